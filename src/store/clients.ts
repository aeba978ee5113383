/**
 * SMART Backend Services clients, the assertions they have used and the access tokens issued to
 * them. A client acts for exactly one partner; what it may reach follows from that partner. A
 * Patient Identity Source (IHE PIXm ITI-104) acts for no partner: it is registered for the
 * identifier domains it feeds, under the reserved partner FEED_PARTNER, which no partner id can
 * be (partner ids are lower-case letters, digits and hyphens) and which owns no Group.
 * Tokens are stored as their SHA-256, so a copy of the database hands out no live token.
 */
import { createHash } from 'node:crypto';
import { RostermatchError } from '../errors/index.ts';
import { audit } from './audit.ts';
import type { Queryable } from './db.ts';

/** The partner a Patient Identity Source's client is stored under: it owns no Group and is no partner. */
export const FEED_PARTNER = '@identity-feed';

export interface SmartClient {
  id: string;
  partner: string;
  /** The identifier domains (Identifier.system) a Patient Identity Source may feed; empty for a partner's client. */
  domains: string[];
  /** The public keys, when registered inline. */
  jwks: { keys: Record<string, unknown>[] } | null;
  /** Where the public keys are published, when registered by URL (and the only jku accepted). */
  jwksUrl: string | null;
  /** The scopes the client may be granted, space-separated. */
  scopes: string;
  createdAt: string;
  createdBy: string;
}

interface ClientRow {
  id: string;
  partner: string;
  jwks: SmartClient['jwks'];
  jwks_url: string | null;
  scopes: string;
  domains: string[] | null;
  created_at: Date;
  created_by: string;
}

const toClient = (r: ClientRow): SmartClient => ({
  id: r.id,
  partner: r.partner,
  jwks: r.jwks,
  jwksUrl: r.jwks_url,
  scopes: r.scopes,
  domains: r.domains ?? [],
  createdAt: r.created_at.toISOString(),
  createdBy: r.created_by,
});

export interface ClientRegistration {
  id: string;
  partner: string;
  jwks?: SmartClient['jwks'];
  jwksUrl?: string;
  scopes: string;
  /** For a Patient Identity Source: the domains it feeds (then partner is FEED_PARTNER). */
  domains?: string[];
  by: string;
  at?: string;
}

export async function addClient(tx: Queryable, c: ClientRegistration): Promise<SmartClient> {
  if ((c.jwks === undefined || c.jwks === null) === (c.jwksUrl === undefined)) {
    throw new RostermatchError('USAGE', 'a client is registered with exactly one of a JWKS or a JWKS URL');
  }
  const domains = [...new Set(c.domains ?? [])];
  // One kind or the other: a feed client is for domains and no partner; a partner's client feeds nothing.
  if ((domains.length > 0) !== (c.partner === FEED_PARTNER)) {
    throw new RostermatchError('USAGE', domains.length > 0 ? 'a Patient Identity Source (a client with domains) acts for no partner' : 'a Patient Identity Source is registered with at least one domain');
  }
  if (domains.length > 0) {
    // PIXm: one Patient Identity Source per domain (its keys may be several, in its one JWKS).
    const { rows: held } = await tx.query<{ id: string; domain: string }>('SELECT id, d AS domain FROM smart_client, unnest(domains) d WHERE d = ANY($1::text[]) ORDER BY d', [domains]);
    if (held[0]) throw new RostermatchError('USAGE', `domain "${held[0].domain}" is fed by client "${held[0].id}" already: one Patient Identity Source per domain (remove that client first)`, { field: 'domain' });
  }
  const at = c.at ?? new Date().toISOString();
  const { rows } = await tx.query<ClientRow>(
    `INSERT INTO smart_client (id, partner, jwks, jwks_url, scopes, domains, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (id) DO NOTHING RETURNING *`,
    [c.id, c.partner, c.jwks ? JSON.stringify(c.jwks) : null, c.jwksUrl ?? null, c.scopes, domains, at, c.by],
  );
  if (!rows[0]) throw new RostermatchError('USAGE', `a client with id "${c.id}" is already registered`);
  await audit(tx, {
    at,
    actor: c.by,
    action: 'client.add',
    entity: `client/${c.id}`,
    detail: { partner: c.partner, jwksUrl: c.jwksUrl ?? null, scopes: c.scopes, ...(domains.length > 0 ? { domains } : {}) },
  });
  return toClient(rows[0]);
}

export async function getClient(db: Queryable, id: string): Promise<SmartClient | undefined> {
  const { rows } = await db.query<ClientRow>('SELECT * FROM smart_client WHERE id = $1', [id]);
  return rows[0] && toClient(rows[0]);
}

export async function listClients(db: Queryable, f: { partner?: string } = {}): Promise<SmartClient[]> {
  const { rows } = await db.query<ClientRow>('SELECT * FROM smart_client WHERE ($1::text IS NULL OR partner = $1) ORDER BY partner, id', [f.partner ?? null]);
  return rows.map(toClient);
}

/** Removes a client and revokes its live tokens at once. */
export async function removeClient(tx: Queryable, id: string, by: string): Promise<void> {
  const { rows } = await tx.query<{ partner: string }>('DELETE FROM smart_client WHERE id = $1 RETURNING partner', [id]);
  if (!rows[0]) throw new RostermatchError('USAGE', `no client with id "${id}"`);
  await tx.query('DELETE FROM access_token WHERE client_id = $1', [id]);
  await audit(tx, { actor: by, action: 'client.remove', entity: `client/${id}`, detail: { partner: rows[0].partner } });
}

/**
 * Records an assertion's jti; false when this client used it before and it has not expired yet
 * (a replay). Expired ones are forgotten on the way, so the table holds minutes of assertions.
 */
export async function useAssertion(db: Queryable, clientId: string, jti: string, expiresAt: Date, now: Date): Promise<boolean> {
  await db.query('DELETE FROM client_assertion WHERE expires_at < $1', [now.toISOString()]);
  const { rows } = await db.query<{ jti: string }>(
    'INSERT INTO client_assertion (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING jti',
    [clientId, jti, expiresAt.toISOString()],
  );
  return rows.length === 1;
}

export interface AccessGrant {
  clientId: string;
  partner: string;
  scopes: string[];
  expiresAt: string;
}

export const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

export async function storeAccessToken(db: Queryable, token: string, g: AccessGrant, now: Date): Promise<void> {
  await db.query('DELETE FROM access_token WHERE expires_at < $1', [now.toISOString()]);
  await db.query('INSERT INTO access_token (token_hash, client_id, partner, scopes, expires_at) VALUES ($1, $2, $3, $4, $5)', [
    tokenHash(token),
    g.clientId,
    g.partner,
    g.scopes,
    g.expiresAt,
  ]);
}

/** The grant behind a bearer token, if it is live and its client still registered. */
export async function findAccessToken(db: Queryable, token: string, now: Date): Promise<AccessGrant | undefined> {
  const { rows } = await db.query<{ client_id: string; partner: string; scopes: string[]; expires_at: Date }>(
    `SELECT t.client_id, t.partner, t.scopes, t.expires_at FROM access_token t JOIN smart_client c ON c.id = t.client_id AND c.partner = t.partner
      WHERE t.token_hash = $1 AND t.expires_at > $2`,
    [tokenHash(token), now.toISOString()],
  );
  const r = rows[0];
  return r && { clientId: r.client_id, partner: r.partner, scopes: r.scopes, expiresAt: r.expires_at.toISOString() };
}
