/**
 * SMART Backend Services clients: which partner each acts for, where its keys come from and what
 * it may be granted. Keys show as kid and alg only — enough to match a partner's "which key?"
 * against the set, and nothing an operator could copy into another client by mistake.
 */
import type { SmartClient } from '../../store/index.ts';
import { html, when, type Html } from '../html.ts';

/** RS384 keys are RSA, ES384 keys EC (P-384): the only two the registration accepts. */
const ALG_OF_KTY: Record<string, string> = { RSA: 'RS384', EC: 'ES384' };

export interface ClientView {
  id: string;
  partner: string;
  keys: { source: 'inline'; keys: { kid: string; alg: string }[] } | { source: 'url'; url: string };
  scopes: string[];
  createdAt: string;
  createdBy: string;
}

/** The page's and the API's form of a client. */
export function clientView(c: SmartClient): ClientView {
  return {
    id: c.id,
    partner: c.partner,
    keys: c.jwks
      ? { source: 'inline', keys: c.jwks.keys.map((k) => ({ kid: String(k.kid ?? ''), alg: String(k.alg ?? ALG_OF_KTY[String(k.kty)] ?? '') })) }
      : { source: 'url', url: c.jwksUrl ?? '' },
    scopes: c.scopes.split(' '),
    createdAt: c.createdAt,
    createdBy: c.createdBy,
  };
}

const keyCell = (k: ClientView['keys']): Html =>
  k.source === 'url'
    ? html`URL <code>${k.url}</code>`
    : html`inline: ${k.keys.map((x, i) => html`${i > 0 ? ', ' : ''}<code>${x.kid}</code> <span class="muted">${x.alg}</span>`)}`;

export function clientsPage(clients: readonly ClientView[]): Html {
  return html`<h1>SMART clients <small class="muted">${clients.length} registered</small></h1>
<p class="muted">Partners' systems that may request Bulk Data access tokens; each sees only its partner's Groups. Registered with <code>rostermatch client add</code>, removed (its tokens revoked) with <code>rostermatch client remove</code>.</p>
<table class="clients">
<thead><tr><th>Client id</th><th>Partner</th><th>Keys</th><th>Scopes</th><th>Created (UTC)</th><th>By</th></tr></thead>
<tbody>${clients.length === 0
    ? html`<tr><td colspan="6" class="empty">No clients yet: <code>rostermatch client keys</code> makes a key pair, <code>rostermatch client add</code> registers it.</td></tr>`
    : clients.map(
        (c) => html`<tr data-client="${c.id}"><td><code>${c.id}</code></td><td>${c.partner}</td><td>${keyCell(c.keys)}</td><td>${c.scopes.map((s, i) => html`${i > 0 ? ' ' : ''}<code>${s}</code>`)}</td><td>${when(c.createdAt)}</td><td>${c.createdBy}</td></tr>`,
      )}</tbody>
</table>`;
}
