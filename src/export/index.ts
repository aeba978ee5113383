/**
 * Bulk Data export of one Group: Patient.ndjson and Immunization.ndjson for its members and a
 * manifest in the shape of the Bulk Data IG's completion response. Each type is one query streamed
 * straight to its file (the store's copyOut), never holding a whole resource type in memory, into
 * a hidden folder that is renamed into place only once complete — only a successful export
 * publishes a manifest.
 *
 * `since` follows Bulk Data `_since`: resources changed after that instant, plus — the optional
 * behaviour the IG allows for Group exports — all resources of patients who joined the Group
 * after it, so a new member arrives with their whole history.
 */
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Db } from '../store/index.ts';
import { assertGroupOwner, getGroup } from '../store/index.ts';
import { RostermatchError } from '../errors/index.ts';

export const EXPORT_TYPES = ['Patient', 'Immunization'] as const;
export type ExportType = (typeof EXPORT_TYPES)[number];

export interface ExportRequest {
  groupId: string;
  /** Root folder; the export lands in <outRoot>/<groupId>/<timestamp>/. */
  outRoot: string;
  since?: string;
  types?: readonly ExportType[];
  /** Clock, for tests. @defaultValue now */
  now?: Date;
  /** The run this export follows, so a repeated finalise knows it was done. */
  runId?: string;
  /** The partner asking, when a partner asks (a run, a FHIR client): only the Group's owner may. */
  partner?: string;
}

export interface Manifest {
  transactionTime: string;
  request: string;
  requiresAccessToken: boolean;
  output: { type: ExportType; url: string; count: number }[];
  error: { type: string; url: string }[];
}

export interface ExportResult {
  dir: string;
  manifest: Manifest;
}

/** Parses and checks `--type` / `--since` as Bulk Data does, naming the bad parameter. */
export function parseExportParams(params: { type?: string; since?: string }): { types: ExportType[]; since?: string } {
  const types = params.type
    ? params.type.split(',').map((t) => t.trim()).filter(Boolean)
    : [...EXPORT_TYPES];
  for (const t of types) {
    if (!(EXPORT_TYPES as readonly string[]).includes(t)) {
      throw new RostermatchError('EXPORT_INVALID_REQUEST', `_type "${t}" is not exported (supported: ${EXPORT_TYPES.join(', ')})`, { field: '_type' });
    }
  }
  let since: string | undefined;
  if (params.since !== undefined) {
    const d = new Date(params.since);
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(params.since) || Number.isNaN(d.getTime())) {
      throw new RostermatchError('EXPORT_INVALID_REQUEST', '_since must be a FHIR instant such as 2026-01-01T00:00:00Z', { field: '_since' });
    }
    since = d.toISOString();
  }
  return { types: types as ExportType[], ...(since ? { since } : {}) };
}

export async function exportGroup(db: Db, req: ExportRequest): Promise<ExportResult> {
  const group = req.partner === undefined ? await getGroup(db, req.groupId) : await assertGroupOwner(db, req.partner, req.groupId);
  if (!group) throw new RostermatchError('GROUP_NOT_FOUND', `no Group with id "${req.groupId}"`, { field: 'group' });
  const types = req.types ?? EXPORT_TYPES;
  const transactionTime = (req.now ?? new Date()).toISOString();
  const stamp = transactionTime.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const groupDir = path.join(req.outRoot, req.groupId);
  const finalDir = path.join(groupDir, stamp);
  const workDir = path.join(groupDir, `.${stamp}.partial-${process.pid}`);
  await fs.mkdir(workDir, { recursive: true });
  try {
    const output: Manifest['output'] = [];
    for (const type of types) {
      const file = `${type}.ndjson`;
      const count = await writeType(db, type, req.groupId, req.since, transactionTime, path.join(workDir, file));
      output.push({ type, url: pathToFileURL(path.join(finalDir, file)).href, count });
    }
    const query = [`_type=${types.join(',')}`, ...(req.since ? [`_since=${req.since}`] : [])].join('&');
    const manifest: Manifest = {
      transactionTime,
      request: `Group/${req.groupId}/$export?${query}`,
      requiresAccessToken: false,
      output,
      error: [],
    };
    await fs.writeFile(path.join(workDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await fs.rm(finalDir, { recursive: true, force: true });
    await fs.rename(workDir, finalDir);
    await db.query(
      'INSERT INTO export (id, group_id, transaction_time, dir, manifest, run_id) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING',
      [`${req.groupId}/${stamp}`, req.groupId, transactionTime, finalDir, JSON.stringify(manifest), req.runId ?? null],
    );
    return { dir: finalDir, manifest };
  } catch (e) {
    await fs.rm(workDir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The Group's members along group_member's primary key, each member's resources by index: the
 * walk is proportional to the Group, whatever the statistics say. A store may never have been
 * analysed (autovacuum off, PGlite), and then the planner reads all 10M immunizations to find a
 * Group's 1.4M, and sorts them.
 */
export const WALK_MEMBERS = [
  'SET LOCAL enable_seqscan = off',
  'SET LOCAL enable_bitmapscan = off',
  'SET LOCAL enable_hashjoin = off',
  'SET LOCAL enable_mergejoin = off',
  'SET LOCAL jit = off',
].join('; ');

async function writeType(db: Db, type: ExportType, groupId: string, since: string | undefined, until: string, file: string): Promise<number> {
  return db.copyOut(selectionQuery(type, { groupId, until, ...(since ? { since } : {}) }), createWriteStream(file), WALK_MEMBERS);
}

/** A condition on an Immunization, one search parameter of a `_typeFilter` (several in one filter all hold). */
export type ImmunizationCondition =
  | { param: 'status'; values: string[] }
  | { param: 'vaccine-code'; values: { system?: string; code: string }[] }
  | { param: 'date'; comparator: 'eq' | 'ge' | 'gt' | 'le' | 'lt'; value: string };

/** Which of a Group's resources an export writes: the Bulk Data parameters, checked (see src/fhir). */
export interface Selection {
  groupId: string;
  /** Resources changed after this instant belong to the next export. */
  until: string;
  since?: string;
  /** Only these members (the `patient` parameter). */
  patients?: readonly string[];
  /** Top-level elements kept (besides those FHIR makes mandatory); the resource is then tagged SUBSETTED. */
  elements?: readonly string[];
  /** Immunizations meeting any one of these lists of conditions (`_typeFilter`). */
  filters?: readonly (readonly ImmunizationCondition[])[];
}

/** Elements kept whatever `_elements` says: the resource's identity, and what R4 makes mandatory. */
const MANDATORY: Record<ExportType, readonly string[]> = {
  Patient: ['resourceType', 'id', 'meta'],
  Immunization: ['resourceType', 'id', 'meta', 'status', 'vaccineCode', 'patient', 'occurrenceDateTime', 'occurrenceString'],
};

const SUBSETTED = '{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}';

/**
 * One type's resources for the selection, by member id then resource id. With `since`, a member
 * who joined after it comes whole, the others with what changed after it (added_at is written at
 * the millisecond, as `since` is given).
 */
export function selectionQuery(type: ExportType, s: Selection): string {
  const [table, owner] = type === 'Patient' ? ['patient', 'id'] : ['immunization', 'patient_id'];
  const where = [`m.group_id = ${literal(s.groupId)}`, `r.last_updated <= ${literal(s.until)}`];
  if (s.since) where.push(`(m.added_at > ${literal(s.since)} OR r.last_updated > ${literal(s.since)})`);
  if (s.patients) where.push(`m.patient_id = ANY (${textArray(s.patients)})`);
  if (type === 'Immunization' && s.filters && s.filters.length > 0) where.push(`(${s.filters.map((f) => `(${f.map(condition).join(' AND ') || 'true'})`).join(' OR ')})`);
  const resource = s.elements ? subset(s.elements, MANDATORY[type]) : 'r.resource';
  return `SELECT (${resource})::text FROM group_member m JOIN ${table} r ON r.${owner} = m.patient_id
           WHERE ${where.join(' AND ')}
           ORDER BY m.patient_id, r.id`;
}

/** The resource with only `elements` (and the mandatory ones) at its top level, its meta tagged SUBSETTED. */
function subset(elements: readonly string[], mandatory: readonly string[]): string {
  const keep = textArray([...new Set([...mandatory, ...elements])]);
  return `(SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(r.resource) e WHERE e.key = ANY (${keep}))
          || jsonb_build_object('meta', coalesce(r.resource->'meta', '{}'::jsonb)
               || jsonb_build_object('tag', coalesce(r.resource->'meta'->'tag', '[]'::jsonb) || '[${SUBSETTED}]'::jsonb))`;
}

function condition(c: ImmunizationCondition): string {
  switch (c.param) {
    case 'status':
      return `r.resource->>'status' = ANY (${textArray(c.values)})`;
    case 'vaccine-code':
      return `EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(r.resource->'vaccineCode'->'coding', '[]'::jsonb)) c WHERE ${c.values
        .map((v) => `(c->>'code' = ${literal(v.code)}${v.system !== undefined ? ` AND c->>'system' = ${literal(v.system)}` : ''})`)
        .join(' OR ')})`;
    case 'date': {
      // The occurrence's date at the precision of the value asked for (a day, a month, a year).
      const occurred = `left(r.resource->>'occurrenceDateTime', ${c.value.length})`;
      const op = { eq: '=', ge: '>=', gt: '>', le: '<=', lt: '<' }[c.comparator];
      return `${occurred} ${op} ${literal(c.value)}`;
    }
  }
}

function textArray(values: readonly string[]): string {
  return `ARRAY[${values.map(literal).join(', ') || "''"}]::text[]`;
}

/** A value as an SQL literal, copyOut taking no parameters; E'' reads the same whatever standard_conforming_strings says. */
function literal(value: string): string {
  return `E'${value.replace(/[\\']/g, (c) => c + c)}'`;
}
