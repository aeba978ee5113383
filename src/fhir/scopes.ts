/**
 * SMART system scopes, v1 (`system/Patient.read`) and v2 (`system/Patient.rs`) alike: what a
 * token lets its client read or search, and — for a partner that manages its own Group
 * (`system/Group.write`, v2 `system/Group.u`) — update Group membership. A requested scope is granted only whole — every
 * resource type and permission it names allowed by the client's registration — and the others
 * are left out of the token, as OAuth lets a server grant less than was asked.
 */

export const SCOPED_TYPES = ['Patient', 'Immunization', 'Group'] as const;
export type ScopedType = (typeof SCOPED_TYPES)[number];
export type Permission = 'r' | 's' | 'u';

/** What a set of scopes allows, by resource type. */
export type Access = Record<ScopedType, ReadonlySet<Permission>>;

/** One scope's types and permissions, or undefined when it is no system scope we serve. */
export function parseScope(scope: string): { types: ScopedType[]; permissions: Permission[] } | undefined {
  const m = /^system\/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|[cruds]+)$/.exec(scope);
  if (!m) return undefined;
  const [, type, what] = m as unknown as [string, string, string];
  const types = type === '*' ? [...SCOPED_TYPES] : (SCOPED_TYPES as readonly string[]).includes(type) ? [type as ScopedType] : undefined;
  if (!types) return undefined;
  let permissions: Permission[];
  // v1's * is read and write: granted as read, as OAuth lets a server grant less than was asked.
  if (what === 'read' || what === '*') permissions = ['r', 's'];
  else if (what === 'write') permissions = ['u'];
  else {
    // v2 letters come in the order c, r, u, d, s; nothing here is created or deleted.
    if (!/^c?r?u?d?s?$/.test(what) || /[cd]/.test(what)) return undefined;
    permissions = [...what] as Permission[];
  }
  // The only thing a client may change is a Group's membership.
  if (permissions.includes('u') && (type === '*' || type !== 'Group')) return undefined;
  return { types, permissions };
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
 * every served type, in SMART v1 and v2 forms, and changing Group membership.
 */
export const SUPPORTED_SCOPES: readonly string[] = [
  ...['*', ...SCOPED_TYPES].flatMap((t) => ['read', 'rs', 'r', 's'].map((a) => `system/${t}.${a}`)),
  'system/Group.write',
  'system/Group.u',
];
