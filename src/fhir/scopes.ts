/**
 * SMART system scopes, v1 (`system/Patient.read`) and v2 (`system/Patient.rs`) alike: what a
 * token lets its client read or search, and — for a partner that manages its own Group
 * (`system/Group.write`, v2 `system/Group.u`) — update Group membership. A Patient Identity
 * Source (IHE PIXm ITI-104) writes Patients instead: `system/Patient.write` (v2 `system/Patient.cud`,
 * or its parts `.cu` to add and revise, `.d` to remove), or the IHE IUA scope `ITI-104`, which
 * means the same. A requested scope is granted only whole — every resource type and permission it
 * names allowed by the client's registration — and the others are left out of the token, as
 * OAuth lets a server grant less than was asked.
 */

export const SCOPED_TYPES = ['Patient', 'Immunization', 'Group'] as const;
export type ScopedType = (typeof SCOPED_TYPES)[number];
export type Permission = 'c' | 'r' | 'u' | 'd' | 's';

/** IHE IUA's scope for the Patient Identity Feed FHIR transaction: create, update and delete Patients. */
export const ITI_104_SCOPE = 'ITI-104';

/** What a set of scopes allows, by resource type. */
export type Access = Record<ScopedType, ReadonlySet<Permission>>;

/** One scope's types and permissions, or undefined when it is no system scope we serve. */
export function parseScope(scope: string): { types: ScopedType[]; permissions: Permission[] } | undefined {
  if (scope === ITI_104_SCOPE) return { types: ['Patient'], permissions: ['c', 'u', 'd'] };
  const m = /^system\/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|[cruds]+)$/.exec(scope);
  if (!m) return undefined;
  const [, type, what] = m as unknown as [string, string, string];
  const types = type === '*' ? [...SCOPED_TYPES] : (SCOPED_TYPES as readonly string[]).includes(type) ? [type as ScopedType] : undefined;
  if (!types) return undefined;
  let permissions: Permission[];
  // v1's * is read and write: granted as read, as OAuth lets a server grant less than was asked.
  if (what === 'read' || what === '*') permissions = ['r', 's'];
  // v1's write is what each type can be changed by: a Group's membership, a Patient by the identity feed.
  else if (what === 'write') permissions = type === 'Patient' ? ['c', 'u', 'd'] : ['u'];
  else {
    // v2 letters come in the order c, r, u, d, s.
    if (!/^c?r?u?d?s?$/.test(what)) return undefined;
    permissions = [...what] as Permission[];
  }
  const writes = permissions.filter((p) => p === 'c' || p === 'u' || p === 'd');
  // What may change: a Group's membership (u), a Patient by the feed (c, u, d) — never a wildcard.
  if (writes.length > 0 && !(type === 'Patient' || (type === 'Group' && writes.every((p) => p === 'u')))) return undefined;
  return { types, permissions };
}

/** Whether a scope lets a client change Patients: the identity feed's scopes, which only a feed client may hold. */
export function isFeedScope(scope: string): boolean {
  const p = parseScope(scope);
  return !!p && p.types.includes('Patient') && p.permissions.some((x) => x === 'c' || x === 'u' || x === 'd');
}

export function accessOf(scopes: readonly string[]): Access {
  const access = Object.fromEntries(SCOPED_TYPES.map((t) => [t, new Set<Permission>()])) as Record<ScopedType, Set<Permission>>;
  for (const s of scopes) {
    const p = parseScope(s);
    if (p) for (const t of p.types) for (const perm of p.permissions) access[t].add(perm);
  }
  return access;
}

/** The requested scopes the registration allows, each whole; empty when none is. */
export function grantScopes(requested: string, allowed: readonly string[]): string[] {
  const may = accessOf(allowed);
  const granted: string[] = [];
  for (const s of new Set(requested.split(/\s+/).filter(Boolean))) {
    const p = parseScope(s);
    if (p && p.types.every((t) => p.permissions.every((perm) => may[t].has(perm)))) granted.push(s);
  }
  return granted;
}

/**
 * The scopes a registration may name (and the SMART configuration lists): reading and searching
 * every served type, in SMART v1 and v2 forms, changing Group membership, and — for a Patient
 * Identity Source only — the identity feed's scopes.
 */
export const FEED_SCOPES: readonly string[] = ['system/Patient.write', 'system/Patient.cud', 'system/Patient.cu', 'system/Patient.d', ITI_104_SCOPE];
export const SUPPORTED_SCOPES: readonly string[] = [
  ...['*', ...SCOPED_TYPES].flatMap((t) => ['read', 'rs', 'r', 's'].map((a) => `system/${t}.${a}`)),
  'system/Group.write',
  'system/Group.u',
  ...FEED_SCOPES,
];
