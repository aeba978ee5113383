/**
 * Loading the patient index from an IIS extract: FHIR Patient/Immunization NDJSON (the form a
 * bulk extract has) or the documented CSV form. Streams line by line and writes in batches, so a
 * million-patient file never sits in memory; upserts by id, so a second load of the same data
 * changes nothing. A bad line is reported with its file, line and reason, and the rest loads.
 */
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { parse } from 'csv-parse';
import type { Db, ImmunizationWrite, PatientText, PatientWrite, RenderedPatientWrite, UpsertCounts } from '../store/index.ts';
import {
  analyzeIndex,
  changeStamp,
  dropBlockIndexesIfEmpty,
  feedPatientById,
  removeFeedPatientById,
  lastPerId,
  markMatchForm,
  mergeImmunizations,
  mergePatients,
  patientResources,
  restoreBlockIndexes,
  rewriteMatchView,
  storedHashes,
  storedMatchForm,
} from '../store/index.ts';
import { RostermatchError } from '../errors/index.ts';
import { csvKind, csvToResource } from './csv-form.ts';
import { HeldLines, HeldLinesError } from './held-lines.ts';
import type { FhirPatient } from './fhir.ts';
import { patientView, patientViewOf, prepare, sentResource, type PatientView, type PreparedLine, type ReadImmunization, type ReadLine, type ReadPatient, type SourceLine } from './prepare.ts';
import { preparedLines } from './prepared-lines.ts';

export { patientFromFhir } from './fhir.ts';
export { hasRemovedTag, REMOVED_TAG } from './prepare.ts';
export { PATIENT_CSV_COLUMNS, IMMUNIZATION_CSV_COLUMNS } from './csv-form.ts';

export interface RejectedLine {
  file: string;
  line: number;
  reason: string;
}

export interface LoadReport {
  file: string;
  lines: number;
  patients: UpsertCounts;
  immunizations: UpsertCounts;
  /** Delta lines applied by the identity feed's logic (see applyDelta): merges, unmerges, removals. */
  merged: number;
  unmerged: number;
  removed: number;
  rejected: number;
  /** The first rejections, in file order (all of them are counted in `rejected`). */
  rejections: RejectedLine[];
}

/**
 * The version of normalisation and blocking that stored person columns, identifiers and blocking
 * keys follow. Bump it with any change to either: a store behind it is rewritten from its stored
 * resources before it is matched against, so the database's blocking table and an in-memory copy
 * built from the same rows always agree, and no patient keeps keys an older version gave it.
 * 2: identifiers and placeholders read per issue 10, multi-line streets, second-round blocking keys.
 * 3: the mother's maiden name and the birth order (issue 13), read into their own columns.
 * 4: merged-away patients keep their blocking keys: they stand for their survivor (issue 14).
 */
export const MATCH_FORM = 4;

/**
 * Brings a store written by an older version up to MATCH_FORM (a no-op when it is current);
 * returns how many patients were rewritten. Safe to repeat, or to run from two processes at once.
 */
export async function ensureMatchForm(db: Db): Promise<number> {
  await restoreBlockIndexes(db);
  if ((await storedMatchForm(db)) >= MATCH_FORM) return 0;
  let rewritten = 0;
  for await (const resources of patientResources(db, 512)) {
    const writes = resources.flatMap((r) => {
      const view = patientViewOf(r as FhirPatient);
      // A resource the loader accepted once and cannot read now keeps its old view.
      return 'error' in view ? [] : [view];
    });
    await db.transaction((tx) => rewriteMatchView(tx, writes));
    rewritten += writes.length;
  }
  await db.transaction((tx) => markMatchForm(tx, MATCH_FORM));
  return rewritten;
}

/**
 * Lines per batch: one transaction stages and merges them. Large, so each statement's fixed cost
 * is spread over many rows; bounded, so a file of any size streams through in constant memory.
 */
export const LOAD_BATCH_LINES = 20_000;
const MAX_LISTED_REJECTIONS = 1000;

/** A file this large is prepared on a worker thread (prepared-lines.ts); a smaller one in this thread. */
const WORKER_FROM_BYTES = 4 << 20;

/** Why an Immunization line is refused when its Patient is in neither the index nor the file. */
const ORPHAN_REASON = 'Immunization.patient references a Patient not in the index';

/**
 * Loads one index file. Each batch's changes are stamped (meta.lastUpdated) in the transaction
 * that writes them, from the store's one clock (changeStamp), so a Bulk `_since` export never
 * misses them. `now` replaces that clock (tests).
 *
 * An Immunization whose Patient is not in the index when its batch is written is held back, and
 * written again once every Patient line of the file has been applied — the bulk batches, then the
 * delta lines (applyDelta), which may create the Patient — so an Immunization may come before its
 * Patient in the file, or name one only a delta line creates. Still without its Patient then, it
 * is rejected. A held line is superseded by any later line of its id in the file (written, found
 * unchanged, or held itself): it is neither written nor counted, as the last line of an id wins
 * everywhere else. A file whose Patients are all there first holds nothing back.
 */
export async function loadIndexFile(
  db: Db,
  file: string,
  opts: {
    /** @defaultValue the store's clock */
    now?: () => Date;
    /** Prepare the lines on a worker thread. @defaultValue for a file of WORKER_FROM_BYTES or more */
    worker?: boolean;
  } = {},
): Promise<LoadReport> {
  // Unchanged patients are not rewritten by a load: bring their stored view up to date first.
  await ensureMatchForm(db);
  const report: LoadReport = {
    file,
    lines: 0,
    patients: { inserted: 0, updated: 0, unchanged: 0 },
    immunizations: { inserted: 0, updated: 0, unchanged: 0 },
    merged: 0,
    unmerged: 0,
    removed: 0,
    rejected: 0,
    rejections: [],
  };
  const reject = (line: number, reason: string) => {
    report.rejected++;
    if (report.rejections.length < MAX_LISTED_REJECTIONS) report.rejections.push({ file, line, reason });
  };
  const add = (counts: UpsertCounts, c: UpsertCounts) => {
    counts.inserted += c.inserted;
    counts.updated += c.updated;
    counts.unchanged += c.unchanged;
  };
  // Into an empty index, batches are written straight in (and its key indexes built at the end).
  const fresh = await dropBlockIndexesIfEmpty(db);
  let patients: ReadPatient[] = [];
  let immunizations: ReadImmunization[] = [];
  // Delta lines (a replaced-by link, a removal mark, a link dropped, and any later line of their
  // ids) go through the identity feed's logic after the bulk part, in file order.
  const delta: DeltaLine[] = [];
  const deltaIds = new Set<string>();
  const held = new HeldLines<ReadImmunization>();
  /** Writes one batch in one transaction; returns its Immunizations whose Patient is not in the index. */
  const write = (p: NormalisedPatient[], im: ReadImmunization[]) =>
    db.transaction(async (tx) => {
      // Stamped here, not when read: the stamp must be taken under the lock this transaction holds to its commit.
      const at = await changeStamp(tx, opts.now);
      // Patients first, so an Immunization in the same batch finds its patient.
      add(report.patients, await mergePatients(tx, p.map((w) => stampPatient(w, at)), { fresh }));
      const c = await mergeImmunizations(tx, im.map((w) => stampImmunization(w, at)));
      add(report.immunizations, c);
      return im.filter((w) => c.orphans.has(w.id));
    });
  // One batch is merged while the next is read and prepared, so Node's work and the database's
  // overlap; batches land in file order.
  let merging: Promise<void> = Promise.resolve();
  // Ids the batch being merged may change: what the database says of them is not final yet.
  let inFlight = { patients: new Set<string>(), immunizations: new Set<string>() };
  const flush = async () => {
    let readPatients = lastPerId(patients, (w) => w.id);
    let im = lastPerId(immunizations, (w) => w.id);
    // Every Immunization line of the batch, changed or not: each supersedes a line of its id held back earlier.
    const read = im;
    patients = [];
    immunizations = [];
    if (!fresh) {
      // Unchanged lines (most of a nightly full extract) are neither normalised nor staged.
      const before = [readPatients.length, im.length];
      readPatients = await withoutUnchanged(db, 'patient', readPatients, inFlight.patients);
      im = await withoutUnchanged(db, 'immunization', im, inFlight.immunizations);
      report.patients.unchanged += before[0]! - readPatients.length;
      report.immunizations.unchanged += before[1]! - im.length;
      // A changed line without a replaced-by link, of a patient stored merged away: an unmerge.
      const unmerging = await storedMerged(db, readPatients.map((r) => r.id));
      if (unmerging.size > 0) {
        for (const r of readPatients) {
          if (!unmerging.has(r.id)) continue;
          delta.push({ line: r.line, kind: 'revise', id: r.id, resource: sentResource(r) });
          deltaIds.add(r.id);
        }
        readPatients = readPatients.filter((r) => !unmerging.has(r.id));
      }
    }
    const p = readPatients.flatMap((r): NormalisedPatient[] => {
      const view = r.ready ?? patientView(r);
      if ('error' in view) {
        reject(r.line, view.error);
        return [];
      }
      return [{ ...r, ...view }];
    });
    await merging;
    // Once the batch before is written and its orphans held (nothing to do while none are).
    held.seen(read);
    if (p.length === 0 && im.length === 0) return;
    inFlight = { patients: new Set(p.map((w) => w.id)), immunizations: new Set(im.map((w) => w.id)) };
    merging = write(p, im).then((orphans) => held.hold(orphans));
    // Its failure is thrown where it is awaited: at the next batch or the end.
    merging.catch(() => {});
  };

  const source = /\.csv$/i.test(file) ? csvRecords(file, reject) : ndjsonLines(file);
  const worker = opts.worker ?? (await fs.stat(file).then((st) => st.size >= WORKER_FROM_BYTES, () => false));
  // Whatever fails from here on, the held lines' temporary file goes.
  try {
    try {
      // A first load's lines are all new: each is normalised as it is prepared.
      for await (const chunk of preparedLines(source, { normalise: fresh, worker })) {
        for (const prepared of chunk) {
          if (prepared.kind === 'rejected') reject(prepared.line, prepared.reason);
          else if (prepared.kind === 'remove') {
            delta.push({ line: prepared.line, kind: 'remove', id: prepared.id });
            deltaIds.add(prepared.id);
          } else if (prepared.kind === 'Patient' && (prepared.read.linked || deltaIds.has(prepared.read.id))) {
            const r = prepared.read;
            delta.push({ line: r.line, kind: 'revise', id: r.id, resource: sentResource(r), contentHash: r.contentHash });
            deltaIds.add(r.id);
          } else if (prepared.kind === 'Patient') patients.push(prepared.read);
          else immunizations.push(prepared.read);
          if (patients.length + immunizations.length >= LOAD_BATCH_LINES) await flush();
        }
        if (chunk.length > 0) report.lines = lineOf(chunk.at(-1)!);
      }
      await flush();
      await merging;
    } catch (e) {
      await merging.catch(() => {});
      // A temporary file that cannot be written (a full disk) is not the input file's fault.
      if (e instanceof RostermatchError || e instanceof HeldLinesError) throw e;
      throw new RostermatchError('FILE_UNREADABLE', 'cannot read the index file', { file }, { cause: e });
    } finally {
      if (fresh) await restoreBlockIndexes(db);
    }
    await applyDelta(db, delta, { actor: `index-load:${path.basename(file)}`, file, report, reject, ...(opts.now ? { now: opts.now } : {}) });
    // Every Patient line of the file is applied: the Immunizations held back go now, in file order,
    // those a later line of their id superseded left out (so at most one line of an id).
    for await (const im of held.read(LOAD_BATCH_LINES)) {
      for (const w of await write([], im)) reject(w.line, ORPHAN_REASON);
    }
  } finally {
    await held.dispose();
  }
  if (report.patients.inserted + report.patients.updated + report.immunizations.inserted + report.immunizations.updated > 0) await analyzeIndex(db);
  // Orphaned immunizations are found at the end, after the lines read since.
  report.rejections.sort((a, b) => a.line - b.line);
  return report;
}

/** Why a patient removed by a delta line left its Groups. */
export const LOAD_REMOVE_REASON = 'removed by an index load delta';

/** The line number of a prepared line. */
function lineOf(p: PreparedLine): number {
  return 'read' in p ? p.read.line : p.line;
}

type DeltaLine = { line: number; kind: 'revise'; id: string; resource: Record<string, unknown>; contentHash?: string } | { line: number; kind: 'remove'; id: string };

/** Of these ids, those stored merged away (replaced_by set) and not removed. */
async function storedMerged(db: Db, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>('SELECT id FROM patient WHERE id = ANY ($1::text[]) AND replaced_by IS NOT NULL AND removed_at IS NULL', [ids]);
  return new Set(rows.map((r) => r.id));
}

/**
 * The delta lines of a load, in file order, each as the identity feed applies it (its own
 * transaction under the identity lock: Group moves, `merged`/`removed` events, review items,
 * audit), named by the index's id. A line refused (a survivor nobody holds, a removal of an id the
 * index does not have) is a rejected line; the others still apply. Of revisions of one id adjacent
 * in the delta (no other delta line between them) only the last applies, as of bulk lines: the
 * earlier ones would replay their moves (a merge, then the line dropping its link) each time the
 * delta is loaded again, to end where the last one alone ends. Revisions with another line between
 * all apply, since that line may depend on the earlier one (a Patient merged into this id while it
 * stands alone). A revision dropped so is not tried at all: a refusal it would meet is not reported.
 */
async function applyDelta(
  db: Db,
  lines: DeltaLine[],
  o: { actor: string; file: string; report: LoadReport; reject: (line: number, reason: string) => void; now?: () => Date },
): Promise<void> {
  lines.sort((a, b) => a.line - b.line);
  const applied = lines.filter((l, i) => {
    const next = lines[i + 1];
    return !(l.kind === 'revise' && next?.kind === 'revise' && next.id === l.id);
  });
  const now = o.now ? { now: o.now } : {};
  for (const l of applied) {
    try {
      if (l.kind === 'remove') {
        // A removal sent again (a delta reloaded) is unchanged, as a bulk line sent again is.
        const { rows: gone } = await db.query('SELECT 1 FROM patient WHERE id = $1 AND removed_at IS NOT NULL', [l.id]);
        if (gone.length > 0) {
          o.report.patients.unchanged++;
          continue;
        }
        const out = await removeFeedPatientById(db, { id: l.id, actor: o.actor, reason: LOAD_REMOVE_REASON, ...now });
        if (out.kind === 'absent') o.reject(l.line, 'the removal names no Patient of the index');
        else o.report.removed++;
        continue;
      }
      // The same line sent again (a delta reloaded) changes nothing, as a bulk line would not; nor
      // is the same merge counted twice (a survivor named by identifier is stored by reference too).
      const { rows } = await db.query<{ content_hash: string; replaced_by: string | null }>('SELECT content_hash, replaced_by FROM patient WHERE id = $1', [l.id]);
      if (l.contentHash !== undefined && rows[0]?.content_hash === l.contentHash) {
        o.report.patients.unchanged++;
        continue;
      }
      const out = await feedPatientById(db, { resource: l.resource, actor: o.actor, ...now });
      if (out.kind === 'merged' && out.survivorId === rows[0]?.replaced_by) o.report.patients.unchanged++;
      else if (out.kind === 'merged') o.report.merged++;
      else if (out.kind === 'unmerged') o.report.unmerged++;
      else if (out.kind === 'created') o.report.patients.inserted++;
      else if (out.kind === 'updated') o.report.patients.updated++;
    } catch (e) {
      if (!(e instanceof RostermatchError) || !e.code.startsWith('FEED_')) throw e;
      o.reject(l.line, e.message);
    }
  }
}

/** The resource as stored: meta as sent with our lastUpdated, then the content. */
function stamped(r: ReadLine, at: string): string {
  // Stored as jsonb, which keeps no key order: meta goes first, without serialising the resource twice.
  const meta = JSON.stringify({ ...(r.meta as object | undefined), lastUpdated: at });
  return r.content === '{}' ? `{"meta":${meta}}` : `{"meta":${meta},${r.content.slice(1)}`;
}

/** A Patient line normalised for matching, not yet stamped. */
type NormalisedPatient = ReadLine & (Exclude<PatientView, { error: string }> | { text: PatientText });

/**
 * One Patient as a line of `index load` is written: checked against the R4 rules, normalised for
 * matching, given its blocking keys (a merged-away one too: it stands for its survivor), stamped
 * at `at` — the loader's own steps, for the identity feed (src/store/identity-feed.ts). Throws a
 * plain Error naming the element when the resource cannot be used.
 */
export function patientWrite(resource: Record<string, unknown>, at: string): PatientWrite {
  const { prepared, content } = prepare(resource, 0);
  if (prepared.kind !== 'Patient') throw new Error('resourceType must be Patient');
  const view = patientViewOf(content as unknown as FhirPatient);
  if ('error' in view) throw new Error(view.error);
  return { patient: view.patient, blockKeys: view.blockKeys, ...stamp(prepared.read, at) };
}

function stampPatient(w: NormalisedPatient, at: string): PatientWrite | RenderedPatientWrite {
  return 'text' in w ? { id: w.id, text: w.text, ...stamp(w, at) } : { patient: w.patient, blockKeys: w.blockKeys, ...stamp(w, at) };
}

function stamp(w: ReadLine, at: string): { resource: string; contentHash: string; lastUpdated: string } {
  return { resource: stamped(w, at), contentHash: w.contentHash, lastUpdated: at };
}

function stampImmunization(w: ReadImmunization, at: string): ImmunizationWrite {
  return { id: w.id, patientId: w.patientId, ...stamp(w, at) };
}

/** `lines` less those whose resource is stored with the same content hash (unless the batch in flight may change it). */
async function withoutUnchanged<W extends { id: string; contentHash: string }>(db: Db, table: 'patient' | 'immunization', lines: W[], inFlight: ReadonlySet<string>): Promise<W[]> {
  if (lines.length === 0) return lines;
  const stored = await storedHashes(db, table, lines.map((w) => w.id));
  return lines.filter((w) => inFlight.has(w.id) || stored.get(w.id) !== w.contentHash);
}

/** The lines of an NDJSON file as text, blank ones skipped, numbered as in the file. */
async function* ndjsonLines(file: string): AsyncGenerator<SourceLine> {
  const lines = readline.createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    const t = line === 1 ? text.replace(/^\uFEFF/, '') : text;
    if (t.trim() !== '') yield { line, input: t };
  }
}

async function* csvRecords(file: string, reject: (line: number, reason: string) => void): AsyncGenerator<SourceLine> {
  const parser = createReadStream(file).pipe(parse({ bom: true, info: true, skip_empty_lines: true, trim: true }));
  let header: string[] | undefined;
  let kind: ReturnType<typeof csvKind>;
  for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
    if (!header) {
      header = record.map((h) => h.toLowerCase());
      kind = csvKind(header);
      if (!kind) throw new RostermatchError('INDEX_LINE_INVALID', 'header matches neither the Patient nor the Immunization CSV form', { file, line: 1 });
      continue;
    }
    const row = Object.fromEntries(header.map((h, i) => [h, record[i] ?? '']));
    let resource: Record<string, unknown>;
    try {
      resource = csvToResource(kind!, row);
    } catch (e) {
      reject(info.lines, (e as Error).message);
      continue;
    }
    yield { line: info.lines, input: resource };
  }
}
