/** Partner Groups: the list, and one Group's size, history and latest export. */
import type { ExportRecord, GroupHistoryPage, GroupRecord } from '../../store/index.ts';
import { html, qs, when, type Html } from '../html.ts';

export function groupsPage(groups: readonly GroupRecord[]): Html {
  return html`<h1>Groups</h1>
<table class="groups">
<thead><tr><th>Group</th><th>Owner (partner)</th><th>Name</th><th>Mode</th><th class="num">Members</th><th class="num">Version</th><th>Last change (UTC)</th></tr></thead>
<tbody>${groups.length === 0
    ? html`<tr><td colspan="7" class="empty">No Groups yet: a partner's first completed run creates its Group.</td></tr>`
    : groups.map(
        (g) => html`<tr><td><a href="/groups/${g.id}">${g.id}</a></td><td>${g.partner}</td><td>${g.name}</td><td>${g.mode}</td><td class="num" data-size="${g.id}">${g.size}</td><td class="num">${g.version}</td><td>${when(g.updatedAt)}</td></tr>`,
      )}</tbody>
</table>`;
}

export const EVENTS_PER_PAGE = 100;

/** Who changed the membership: a run, or a person's review decision (actor `review:<name>`). */
function changedBy(e: { runId: string | null; actor: string; ref?: string }): Html {
  if (e.actor.startsWith('confirm:')) return html`held change confirmed by <b>${e.actor.slice('confirm:'.length)}</b>${e.runId ? html` for <a href="/runs/${e.runId}">run ${e.runId.slice(0, 8)}</a>` : ''}`;
  if (e.actor.startsWith('review:')) return html`review decision by <b>${e.actor.slice('review:'.length)}</b>${e.runId ? html` on <a href="/runs/${e.runId}">run ${e.runId.slice(0, 8)}</a>` : ''}`;
  // A member who joined by an HL7 v2 message: its MSH-10, which the partner's system knows it by.
  const message = e.ref ? html` message <code>${e.ref}</code>` : '';
  return e.runId ? html`<a href="/runs/${e.runId}">run ${e.runId.slice(0, 8)}</a>${message} <span class="muted">(${e.actor})</span>` : html`${e.actor}${message}`;
}

export function groupPage(g: GroupRecord, history: GroupHistoryPage, page: number, exp: ExportRecord | undefined): Html {
  const pages = Math.max(1, Math.ceil(history.total / EVENTS_PER_PAGE));
  return html`<p class="crumbs"><a href="/groups">Groups</a> › ${g.partner}</p>
<h1>${g.name} <small class="muted">Group/${g.id}</small></h1>
<dl class="facts">
  <dt>Members</dt><dd id="group-size">${g.size}</dd>
  <dt>Owner (partner)</dt><dd>${g.partner} <span class="muted">(only its files change this Group; rostermatch group move gives it to another)</span></dd>
  <dt>Mode</dt><dd>${g.mode} <span class="muted">(${g.mode === 'replace' ? 'each file is the whole roster' : g.mode === 'remove' ? 'files remove members' : 'files add members'})</span></dd>
  <dt>Version</dt><dd>${g.version}</dd>
  <dt>Last change</dt><dd>${when(g.updatedAt)}</dd>
  <dt>Created</dt><dd>${when(g.createdAt)}</dd>
</dl>
<h2>Latest export</h2>
${!exp || exp.transactionTime < g.updatedAt
  ? html`<form method="post" action="/groups/${g.id}/export" class="stale"><span>${exp ? 'The Group changed after this export (a review decision, say): the export does not hold the latest members.' : ''}</span> <button type="submit">Export now</button></form>`
  : ''}
${exp
  ? html`<dl class="facts">
  <dt>Transaction time</dt><dd>${when(exp.transactionTime)}</dd>
  <dt>After</dt><dd>${exp.runId ? html`<a href="/runs/${exp.runId}">run ${exp.runId.slice(0, 8)}</a>` : 'a manual export'}</dd>
  <dt>Folder</dt><dd><code>${exp.dir}</code></dd>
  <dt>Files</dt><dd>${exp.manifest.output.map((o) => html`<span class="count">${o.type} ${o.count}</span> `)}</dd>
</dl>
<details open><summary>manifest.json</summary><pre class="json">${JSON.stringify(exp.manifest, null, 2)}</pre></details>`
  : html`<p class="muted">No export yet.</p>`}
<h2>Membership history <small class="muted">${history.total} changes, newest first</small></h2>
<table class="history">
<thead><tr><th>When (UTC)</th><th>Change</th><th>Patient</th><th>By</th></tr></thead>
<tbody>${history.events.length === 0
    ? html`<tr><td colspan="4" class="empty">No membership changes yet.</td></tr>`
    : history.events.map((e) => html`<tr class="${e.action}"><td>${when(e.at)}</td><td>${e.action === 'added' ? 'joined' : 'left'}</td><td>Patient/${e.patientId}</td><td>${changedBy(e)}</td></tr>`)}</tbody>
</table>
${pages > 1 ? html`<nav class="pager">${page > 1 ? html`<a href="${qs({ page: page - 1 })}">‹ newer</a>` : ''} page ${page} of ${pages} ${page < pages ? html`<a href="${qs({ page: page + 1 })}">older ›</a>` : ''}</nav>` : ''}`;
}
