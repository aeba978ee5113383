/**
 * Bulk Data export of one Group: Patient.ndjson and Immunization.ndjson for its members and a
 * manifest in the shape of the Bulk Data IG's completion response. Each type is one query streamed
 * straight to its file (the store's copyOut), never holding a whole resource type in memory, into
 * a hidden folder that is renamed into place only once complete — only a successful export
 * publishes a manifest. Each export has a folder of its own, so two exports of a Group in the
 * same second (or millisecond) never overwrite each other.
 *
 * `since` follows Bulk Data `_since`: resources changed after that instant, plus — the optional
 * behaviour the IG allows for Group exports — all resources of patients who joined the Group
 * after it, so a new member arrives with their whole history. The transactionTime is read from
 * the store's one clock under its change lock (exportInstant, src/store/clock.ts), the clock every
 * meta.lastUpdated is stamped from: a resource changed at or before it is in this export, one
 * changed after it in the next `_since=<transactionTime>` export.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Db, GroupCharacteristics } from '../store/index.ts';
import { assertGroupOwner, exportInstant, getGroup } from '../store/index.ts';
import { RostermatchError } from '../errors/index.ts';
import { characteristicMembers } from './characteristics.ts';
import { literal, textArray } from './sql.ts';

export const EXPORT_TYPES = ['Patient', 'Immunization'] as const;
export type ExportType = (typeof EXPORT_TYPES)[number];

export interface ExportRequest {
  groupId: string;
  /** Root folder; the export lands in <outRoot>/<groupId>/<transactionTime>-<random>/, a folder of its own. */
  outRoot: string;
  since?: string;
  types?: readonly ExportType[];
  /** The transactionTime, for tests. @defaultValue the store's clock (exportInstant) */
  now?: Date;
  /** The run this export follows, so a repeated finalise knows it was done. */
  runId?: string;
  /** The partner asking, when a partner asks (a run, a FHIR client): only the Group's owner may. */
  partner?: string;
  /**
   * The FHIR base partners' clients reach this service by (absolute http or https, such as
   * https://iis.example.org/fhir): the manifest's `request` is then the kick-off URL that asks
   * that server for this same export. @defaultValue none: `request` is written against the
   * export root (see exportRequestUrl)
   */
  fhirBase?: string;
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

/** What an instant looks like, for messages. */
export const INSTANT_EXAMPLES = '2026-01-01T00:00:00Z or 2026-01-01T00:00:00.000+02:00';

/**
 * A FHIR instant — a date that exists, a time to the second (a fraction optional), an offset
 * (Z or ±hh:mm) — as a UTC ISO string at the millisecond; undefined when `v` is not one. The one
 * reading of `_since`, for the FHIR kick-off (src/fhir) and the CLI and console export alike.
 */
export function parseInstant(v: string): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-](\d{2}):(\d{2}))$/.exec(v);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (day.getUTCFullYear() !== y || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return undefined;
  if (m[9] !== undefined && (Number(m[9]) > 14 || Number(m[10]) > 59)) return undefined;
  const t = new Date(v);
  if (Number.isNaN(t.getTime())) return undefined;
  // Milliseconds kept; finer digits cannot matter, every stamp being taken at the millisecond (src/store/clock.ts).
  return t.toISOString();
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
    since = parseInstant(params.since);
    if (since === undefined) {
      throw new RostermatchError(
        'EXPORT_INVALID_REQUEST',
        `_since must be a FHIR instant such as ${INSTANT_EXAMPLES} (a date that exists, a time with seconds, an offset): "${params.since}" is not one`,
        { field: '_since' },
      );
    }
  }
  return { types: types as ExportType[], ...(since ? { since } : {}) };
}

/**
 * The manifest's `request`: Bulk Data asks for the full URL of the kick-off request. An export
 * made here (a run, `rostermatch export`, the console's "Export now") had no HTTP request; when
 * the FHIR base partners reach is known, `request` is the kick-off URL that asks that server for
 * this same export (the same Group, types and `_since`). When it is not, there is no URL at which
 * this export could be asked for, so `request` is written against the base that did answer it —
 * the export root on this machine, as a file: URL, the root the output URLs point into — rather
 * than against a server address made up for it. Either way it is absolute, and names the Group
 * and the parameters.
 */
export function exportRequestUrl(r: { groupId: string; outRoot: string; fhirBase?: string | undefined; types: readonly string[]; since?: string | undefined }): string {
  const base = r.fhirBase ?? pathToFileURL(path.resolve(r.outRoot)).href;
  const query = [`_type=${r.types.join(',')}`, ...(r.since ? [`_since=${r.since}`] : [])].join('&');
  return `${base.replace(/\/+$/, '')}/Group/${encodeURIComponent(r.groupId)}/$export?${query}`;
}

export async function exportGroup(db: Db, req: ExportRequest): Promise<ExportResult> {
  if (req.fhirBase !== undefined && !/^https?:\/\/[^/]/.test(req.fhirBase)) {
    throw new RostermatchError('USAGE', 'the FHIR base an export names must be an absolute http or https URL');
  }
  const group = req.partner === undefined ? await getGroup(db, req.groupId) : await assertGroupOwner(db, req.partner, req.groupId);
  if (!group) throw new RostermatchError('GROUP_NOT_FOUND', `no Group with id "${req.groupId}"`, { field: 'group' });
  const types = req.types ?? EXPORT_TYPES;
  const transactionTime = req.now ? req.now.toISOString() : await exportInstant(db);
  // Its own folder: the transactionTime (to the millisecond, so folders sort by it) and a random
  // part, so two exports at the same instant, in one process or two, never share one.
  const folder = `${transactionTime.replace(/[-:]/g, '')}-${randomBytes(4).toString('hex')}`;
  const groupDir = path.join(req.outRoot, req.groupId);
  const finalDir = path.join(groupDir, folder);
  const workDir = path.join(groupDir, `.${folder}.partial-${process.pid}`);
  await fs.mkdir(workDir, { recursive: true });
  try {
    const output: Manifest['output'] = [];
    for (const type of types) {
      const file = `${type}.ndjson`;
      const count = await writeType(db, type, { groupId: req.groupId, until: transactionTime, ...(req.since ? { since: req.since } : {}), ...(group.characteristics ? { defined: group.characteristics } : {}) }, path.join(workDir, file));
      // A type with nothing to export is left out of the manifest (and its empty file out of the
      // folder), as the Bulk Data IG recommends.
      if (count === 0) await fs.rm(path.join(workDir, file));
      // The file's URL is where it is: this export is the IIS operator's copy on this machine,
      // written beside the service and not served by it (the FHIR API serves the exports partners
      // ask it for at its own URLs, src/export/bulk-job.ts) — hence file: URLs, and no access token.
      else output.push({ type, url: pathToFileURL(path.join(finalDir, file)).href, count });
    }
    const manifest: Manifest = {
      transactionTime,
      request: exportRequestUrl({ groupId: req.groupId, outRoot: req.outRoot, fhirBase: req.fhirBase, types, since: req.since }),
      requiresAccessToken: false,
      output,
      error: [],
    };
    await fs.writeFile(path.join(workDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    // Never over another export: the folder is new, and a rename onto one that is not empty fails.
    await fs.rename(workDir, finalDir);
    await db.query(
      'INSERT INTO export (id, group_id, transaction_time, dir, manifest, run_id) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING',
      [`${req.groupId}/${folder}`, req.groupId, transactionTime, finalDir, JSON.stringify(manifest), req.runId ?? null],
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

async function writeType(db: Db, type: ExportType, s: Selection, file: string): Promise<number> {
  return db.copyOut(selectionQuery(type, s), createWriteStream(file), WALK_MEMBERS);
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
  /** A Group defined by characteristics: its members are whoever meets them at `until`. */
  defined?: GroupCharacteristics;
}

/** Elements kept whatever `_elements` says: the resource's identity, and what R4 makes mandatory. */
const MANDATORY: Record<ExportType, readonly string[]> = {
  Patient: ['resourceType', 'id', 'meta'],
  Immunization: ['resourceType', 'id', 'meta', 'status', 'vaccineCode', 'patient', 'occurrenceDateTime', 'occurrenceString'],
};

const SUBSETTED = '{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}';

/**
 * One type's resources for the selection, by member id then resource id. With `since`, a member
 * who joined after it comes whole, the others with what changed after it. Resources changed
 * after `until` (the transactionTime) are left to the next export: `> since` and `<= until` on
 * the same stamps partition time, so an export and the next one with `since` = its `until` hold
 * every change once. Stamps, `since` and `until` are all instants at the millisecond from one
 * clock (src/store/clock.ts), compared as timestamptz, never as text.
 */
export function selectionQuery(type: ExportType, s: Selection): string {
  const [table, owner] = type === 'Patient' ? ['patient', 'id'] : ['immunization', 'patient_id'];
  const where = [...(s.defined ? [] : [`m.group_id = ${literal(s.groupId)}`]), `r.last_updated <= ${instantLiteral(s.until, 'transactionTime')}`];
  // A defined Group's members are who meet its characteristics on the day (UTC) of the transactionTime.
  const members = s.defined ? `(${characteristicMembers(s.defined, parseInstant(s.until)!)})` : 'group_member';
  if (s.since) where.push(`(m.added_at > ${instantLiteral(s.since, '_since')} OR r.last_updated > ${instantLiteral(s.since, '_since')})`);
  if (s.patients) where.push(`m.patient_id = ANY (${textArray(s.patients)})`);
  if (type === 'Immunization' && s.filters && s.filters.length > 0) where.push(`(${s.filters.map((f) => `(${f.map(condition).join(' AND ') || 'true'})`).join(' OR ')})`);
  const resource = s.elements ? subset(s.elements, MANDATORY[type]) : 'r.resource';
  return `SELECT (${resource})::text FROM ${members} m JOIN ${table} r ON r.${owner} = m.patient_id
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


/** An instant as a timestamptz literal; refused unless it is one (it goes into SQL as a literal). */
function instantLiteral(value: string, field: '_since' | 'transactionTime'): string {
  const t = parseInstant(value);
  if (t === undefined) throw new RostermatchError('EXPORT_INVALID_REQUEST', `"${value}" is not a FHIR instant such as ${INSTANT_EXAMPLES}`, { field });
  return `${literal(t)}::timestamptz`;
}

