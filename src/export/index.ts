/**
 * Bulk Data export of one Group: Patient.ndjson and Immunization.ndjson for its members and a
 * manifest in the shape of the Bulk Data IG's completion response. Written page by page (keyset
 * pagination), never holding a whole resource type in memory, into a hidden folder that is
 * renamed into place only once complete — only a successful export publishes a manifest.
 *
 * `since` follows Bulk Data `_since`: resources changed after that instant, plus — the optional
 * behaviour the IG allows for Group exports — all resources of patients who joined the Group
 * after it, so a new member arrives with their whole history.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { finished } from 'node:stream/promises';
import type { Queryable } from '../store/index.ts';
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

const PAGE = 1000;

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

export async function exportGroup(db: Queryable, req: ExportRequest): Promise<ExportResult> {
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
 * Members a page at a time along the membership's primary key, then their resources by index:
 * both look-ups stay proportional to the page, where one join ordered by resource id made the
 * planner sort the whole Group for every page.
 */
async function writeType(db: Queryable, type: ExportType, groupId: string, since: string | undefined, until: string, file: string): Promise<number> {
  const owner = type === 'Patient' ? 'id' : 'patient_id';
  const table = type === 'Patient' ? 'patient' : 'immunization';
  // Resources changed after the request started belong to the next export, not this one.
  const sql = `SELECT resource::text AS json FROM ${table}
                WHERE (${owner} = ANY($1::text[]) OR (${owner} = ANY($2::text[]) AND last_updated > $4::timestamptz))
                  AND last_updated <= $3::timestamptz
                ORDER BY ${owner}, id`;
  const out = createWriteStream(file);
  let count = 0;
  let after = '';
  try {
    for (;;) {
      const { rows: members } = await db.query<{ patient_id: string; added_at: Date }>(
        'SELECT patient_id, added_at FROM group_member WHERE group_id = $1 AND patient_id > $2 ORDER BY patient_id LIMIT $3',
        [groupId, after, PAGE],
      );
      if (members.length === 0) break;
      // Without _since every member is wanted whole; with it, members who joined after it too.
      const whole = members.filter((m) => !since || m.added_at.toISOString() > since).map((m) => m.patient_id);
      const changedOnly = since ? members.filter((m) => m.added_at.toISOString() <= since).map((m) => m.patient_id) : [];
      const { rows } = await db.query<{ json: string }>(sql, [whole, changedOnly, until, since ?? until]);
      for (const r of rows) if (!out.write(`${r.json}\n`)) await drain(out);
      count += rows.length;
      after = members[members.length - 1]!.patient_id;
    }
  } finally {
    out.end();
    await finished(out);
  }
  return count;
}

function drain(out: WriteStream): Promise<void> {
  return new Promise((res) => out.once('drain', res));
}
