/**
 * Matching quality on labelled data nobody here generated: FEBRL datasets 1–3 (each without and
 * with its social-security-like identifier), Splink's fake_1000, the committed samples, and FEBRL
 * 2 and 3 with merged records (below). Each
 * set gets a fresh embedded store and goes through the product path — the index file through
 * loadIndexFile, the roster and its pipeline YAML through runFile — and the recorded results are
 * scored against the ground truth. Blocking is measured apart from the run: the roster parsed by
 * the product's parse stage, each row's blocking keys against an in-memory CandidateIndex of the
 * same index, so a miss can be told apart as "never a candidate" or "a candidate, scored low".
 *
 *   npm run bench:accuracy -- [--sets febrl1,febrl1-id,febrl2,febrl2-id,febrl3,febrl3-id,fake1000,samples,
 *                                      febrl2-merged,febrl2-merged-dropped,febrl3-merged,febrl3-merged-dropped,
 *                                      febrl2-merged-swap,febrl2-merged-swap-dropped,febrl3-merged-swap,febrl3-merged-swap-dropped]
 *        [--json FILE]    every figure, per set
 *        [--misses DIR]   one CSV per set of the in-index rows whose true patient was not auto-matched
 *        [--help]
 *
 * Data: bench/data, a committed copy of the public sets with their licences (BENCH_DATA overrides); see its README.md. Exit status
 * is 1 when a set failed (its error is printed and the other sets still run) or a row was matched
 * to, or listed under, a merged-away patient's own id; 2 on a usage error.
 *
 * Beside recall it prints a floor measured in the same run on the same rows: the deterministic
 * rule many registries start from — a row is matched when exactly one index patient has the same
 * given name, family name and birth date (as normalised) — and the ratio of recall to it, what the
 * probabilistic matching finds beyond that rule.
 *
 * Figures per set: shares of rows by outcome; precision and recall of auto-matches; found-recall,
 * the share of in-index rows whose true patient is auto-matched or listed for review; pairs
 * completeness, the share of valid in-index rows that share a blocking key with their true
 * patient; candidates per valid row, the size of the union of patients the row's keys reach.
 *
 * Merged records (the identity feed's replaced-by, issue 14): in febrlN-merged the index also
 * holds, for each person with two duplicates or more, the first duplicate merged into the
 * original; the other duplicates are the rows, each with the original (the survivor) as truth.
 * The merged records are candidates that stand for their survivor, in the run and in the blocking
 * figures alike (a patient reached is a person: a merged record counts as its survivor; so does
 * the floor's). febrlN-merged-dropped is the same rows against the index without them — no
 * candidate at all, as before merged-away patients kept their keys. A row matched to, or listed
 * under, a merged record's own id is counted (and never expected). febrlN-merged-swap and
 * febrlN-merged-swap-dropped swap the roles: the first duplicate is the live record, the survivor
 * and the rows' truth, and the original is merged into it (or, -dropped, left out) — the rows,
 * derived from the original, carry the old demographics of the record merged away, the case the
 * merged records are kept as candidates for. When both variants of a set ran, a table after the
 * main one sets them side by side, with the rows whose outcome differs.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { benchArgs } from './args.ts';
import { measuredOn, printColumns } from './report.ts';
import { createLogger } from '../src/config/index.ts';
import { ALL_SETS, benchDataDir, hasBenchData, MERGED_SETS, prepare, readIndex, writeCsv, type IndexView, type Prepared, type RosterSpec, type SetName } from '../src/evaluate/datasets.ts';
import { accuracy } from '../src/evaluate/index.ts';
import { comparePair, guardFailure, rowKeys } from '../src/match/index.ts';
import type { IndexPatient, RowResult } from '../src/model/index.ts';
import { readRoster } from '../src/parse/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { loadPipelineFile, type Pipeline } from '../src/pipeline/index.ts';
import { levelsFor, runFile } from '../src/run/index.ts';
import { openStore, streamRunResults, type Db } from '../src/store/index.ts';

const USAGE = `usage: npm run bench:accuracy -- [--sets ${ALL_SETS.join(',')}] [--json FILE] [--misses DIR] [--help]
  --sets    comma-separated sets to run (default: all); ${MERGED_SETS.join(', ')}:
            FEBRL with first duplicates merged into their original (-swap: originals merged into
            their first duplicate), kept as candidates or (-dropped) left out
  --json    write every figure to FILE
  --misses  write DIR/<set>.misses.csv: in-index rows whose true patient was not auto-matched
  --help    this text`;

const values = benchArgs({ sets: { type: 'string' }, json: { type: 'string' }, misses: { type: 'string' } }, USAGE);
const chosen = (values.sets ?? ALL_SETS.join(',')).split(',').map((s) => s.trim()).filter(Boolean);
const unknown = chosen.filter((s) => !(ALL_SETS as readonly string[]).includes(s));
if (unknown.length > 0 || chosen.length === 0) {
  console.error(`${unknown.length ? `unknown set: ${unknown.join(', ')}` : 'no set given'}\n${USAGE}`);
  process.exit(2);
}

const DATA = benchDataDir();
if (!(await hasBenchData(DATA))) {
  console.error(`no FEBRL data under ${DATA}: set BENCH_DATA to the folder holding febrl/ and splink/`);
  process.exit(2);
}
const TODAY = new Date().toISOString().slice(0, 10);

// --- Scoring. -----------------------------------------------------------------------------

interface Figures {
  set: SetName;
  label: string;
  error?: string;
  /** Patients the index load wrote, merged-away ones included. */
  indexPatients?: number;
  /** Of them, stored merged into another (replaced-by): candidates standing for their survivor. */
  indexMerged?: number;
  indexRejected?: number;
  indexLoadSeconds?: number;
  runSeconds?: number;
  /** The whole set: store, index load, every roster's run and scoring. */
  setWallSeconds?: number;
  rows?: number;
  inIndex?: number;
  counts?: { matched: number; review: number; no_match: number; invalid: number };
  shares?: { matched: number; review: number; no_match: number; invalid: number };
  correctMatches?: number;
  falseMatches?: number;
  precision?: number;
  recall?: number;
  f1?: number;
  foundRecall?: number;
  /** Over valid in-index rows (an invalid row has no keys). */
  pairsCompleteness?: number;
  validInIndexRows?: number;
  candidatesPerRow?: { mean: number; p99: number; max: number; validRows: number };
  /** In-index rows whose true patient was not auto-matched. */
  misses?: number;
  /** The floor: the exact rule (one index patient with the same given, family and birth date). */
  exactRule?: { precision: number; recall: number; falseMatches: number };
  recallToExactRule?: number;
  /** Rows auto-matched to, and rows listing a candidate under, a merged-away patient's own id (never expected: a match names the survivor). */
  mergedAwayIds?: { matched: number; listed: number };
}

/** One row's result, kept to set a set's two merged variants side by side. */
interface RowSeen {
  outcome: string;
  right: boolean;
  found: boolean;
}
const seenRows = new Map<string, Map<string, RowSeen>>();

const round = (x: number, d = 4) => +x.toFixed(d);
const yes = (b: boolean) => (b ? 'yes' : 'no');

function describePerson(p: IndexPatient['person']): string {
  return [[p.given, p.middle, p.family, p.suffix].filter(Boolean).join(' '), p.birthDate, p.street, [p.city, p.state, p.zip].filter(Boolean).join(' ')].join(' | ');
}
const levelsOf = (cs: { field: string; level: string }[]) => cs.map((c) => `${c.field}=${c.level}`).join(' ');
const problemsOf = (ps: { field: string; code: string }[] | undefined) => (ps ?? []).map((p) => `${p.field}/${p.code}`).join('; ');

const MISS_HEADER = [
  'record_id', 'line', 'outcome', 'true_patient', 'matched_patient', 'problems', 'warnings', 'row', 'true_patient_record',
  'shares_blocking_key', 'candidates_reachable', 'true_listed', 'true_score', 'true_guard', 'true_levels', 'best_id', 'best_score',
];

async function scoreRoster(
  db: Db,
  runId: string,
  spec: RosterSpec,
  pipeline: Pipeline,
  index: IndexView,
  /** The index patients by exact-rule key. */
  byExactKey: Map<string, string[]>,
  misses: string[][],
): Promise<Omit<Figures, 'set' | 'label' | 'indexPatients' | 'indexMerged' | 'indexRejected' | 'indexLoadSeconds' | 'runSeconds' | 'setWallSeconds'>> {
  const truth = await spec.truth();
  const results: RowResult[] = [];
  for await (const page of streamRunResults(db, runId)) results.push(...page);
  const a = accuracy(
    results.map((r) => ({ recordId: r.recordId, outcome: r.outcome, patientId: r.patientId, candidateIds: r.candidates.map((c) => c.patientId) })),
    truth,
  );
  const counts = { matched: 0, review: 0, no_match: 0, invalid: 0 };
  for (const r of results) counts[r.outcome === 'possible' || r.outcome === 'ambiguous' ? 'review' : r.outcome]++;
  const mergedAwayIds = { matched: 0, listed: 0 };
  const seen = new Map<string, RowSeen>();
  for (const r of results) {
    if (r.outcome === 'matched' && r.patientId !== undefined && index.mergedAway.has(r.patientId)) mergedAwayIds.matched++;
    if (r.candidates.some((c) => index.mergedAway.has(c.patientId))) mergedAwayIds.listed++;
    const t = truth.get(r.recordId)?.patientId ?? '';
    const right = t !== '' && r.outcome === 'matched' && r.patientId === t;
    seen.set(r.recordId, { outcome: r.outcome, right, found: right || (t !== '' && (r.outcome === 'possible' || r.outcome === 'ambiguous') && r.candidates.some((c) => c.patientId === t)) });
  }
  seenRows.set(spec.label, seen);

  // Blocking, from the product's own parse of the same file.
  const { rows } = await readRoster(spec.file, pipeline, TODAY, spec.label);
  const parsed = new Map(rows.map((r) => [r.index, r]));
  const outcomeOf = new Map(results.map((r) => [r.index, r.outcome]));
  const sizes: number[] = [];
  let validInIndex = 0;
  let sharing = 0;
  const reach = new Map<number, { shares: boolean | undefined; size: number }>();
  for (const row of rows) {
    if (row.kind !== 'valid') continue;
    // As matching does: the first round's keys for every row, the second's for a row the first did not match.
    const { first, second } = rowKeys(row);
    // A patient reached is a person: a merged-away record counts as its survivor, as the matcher lists it.
    const union = new Set<string>();
    for (const list of index.candidates.byKeys(first).values()) for (const p of list) union.add(p.survivor ?? p.id);
    const reachable = new Set(union);
    for (const list of index.candidates.byKeys(second).values()) for (const p of list) reachable.add(p.survivor ?? p.id);
    sizes.push(outcomeOf.get(row.index) === 'matched' ? union.size : reachable.size);
    const t = truth.get(row.recordId)?.patientId ?? '';
    // Pairs completeness counts a pair as found when either round reaches it (a large broad block is skipped, as in matching).
    const shares = t === '' ? undefined : reachable.has(t);
    if (t !== '') {
      validInIndex++;
      if (shares) sharing++;
    }
    reach.set(row.index, { shares, size: union.size });
  }
  sizes.sort((x, y) => x - y);

  const exact = accuracy(
    rows.map((row) => {
      const ids = row.kind === 'valid' ? (byExactKey.get(exactKey(row.person)) ?? []) : [];
      return ids.length === 1 ? { recordId: row.recordId, outcome: 'matched', patientId: ids[0], candidateIds: [] } : { recordId: row.recordId, outcome: 'no_match', candidateIds: [] };
    }),
    truth,
  );

  // The diagnostic: every in-index row whose true patient was not auto-matched.
  const levels = await levelsFor(db, pipeline);
  const mergedInto = new Map<string, IndexPatient[]>();
  for (const p of index.mergedAway.values()) mergedInto.set(p.survivor!, [...(mergedInto.get(p.survivor!) ?? []), p]);
  let missCount = 0;
  for (const r of results) {
    const t = truth.get(r.recordId)?.patientId ?? '';
    if (t === '' || (r.outcome === 'matched' && r.patientId === t)) continue;
    missCount++;
    const row = parsed.get(r.index);
    const mine = index.byId.get(t);
    const merged = mergedInto.get(t) ?? [];
    const listed = r.candidates.find((c) => c.patientId === t);
    let trueScore = '';
    let trueGuard = '';
    let trueLevels = '';
    if (listed) {
      trueScore = listed.score.toFixed(2);
      trueGuard = listed.guard ?? '';
      trueLevels = levelsOf(listed.comparisons);
    } else if (row?.kind === 'valid' && mine) {
      // Not listed: score the true pair as the run would have, to show how far it fell short
      // (against the true patient's record the row resembles most, its merged-away ones too, as the matcher judges a person).
      const pair = [mine.patient, ...merged]
        .map((p) => comparePair(row, p, { freq: index.candidates.freq, levels }))
        .reduce((best, p) => (p.score > best.score ? p : best));
      trueScore = `${pair.score.toFixed(2)} (recomputed)`;
      trueGuard = guardFailure(pair) ?? '';
      trueLevels = levelsOf(pair.comparisons);
    }
    const best = r.candidates[0];
    const reached = reach.get(r.index);
    misses.push([
      r.recordId, String(r.line), r.outcome, t, r.outcome === 'matched' ? (r.patientId ?? '') : '', problemsOf(r.problems), problemsOf(r.warnings),
      row?.kind === 'valid' ? describePerson(row.person) : '', mine ? describePerson(mine.patient.person) : '(not in the index file)',
      reached?.shares === undefined ? '' : yes(reached.shares), reached ? String(reached.size) : '', yes(!!listed), trueScore, trueGuard, trueLevels,
      best?.patientId ?? '', best ? best.score.toFixed(2) : r.score !== undefined ? r.score.toFixed(2) : '',
    ]);
  }

  const n = results.length;
  const share = (k: keyof typeof counts) => round(n === 0 ? 0 : counts[k] / n);
  return {
    rows: n,
    inIndex: a.inIndex,
    counts,
    shares: { matched: share('matched'), review: share('review'), no_match: share('no_match'), invalid: share('invalid') },
    correctMatches: a.correctMatches,
    falseMatches: a.falseMatches,
    precision: round(a.precision, 5),
    recall: round(a.recall, 5),
    f1: round(a.f1, 5),
    foundRecall: round(a.inIndex === 0 ? 1 : (a.correctMatches + a.reviewWithTruth) / a.inIndex, 5),
    pairsCompleteness: round(validInIndex === 0 ? 1 : sharing / validInIndex, 5),
    validInIndexRows: validInIndex,
    candidatesPerRow: {
      mean: round(sizes.length === 0 ? 0 : sizes.reduce((s, x) => s + x, 0) / sizes.length, 2),
      p99: sizes.length === 0 ? 0 : sizes[Math.ceil(sizes.length * 0.99) - 1]!,
      max: sizes.at(-1) ?? 0,
      validRows: sizes.length,
    },
    misses: missCount,
    exactRule: { precision: round(exact.precision, 5), recall: round(exact.recall, 5), falseMatches: exact.falseMatches },
    recallToExactRule: round(exact.recall === 0 ? Infinity : a.recall / exact.recall, 2),
    mergedAwayIds,
  };
}

/** The exact rule's key: given name, family name and birth date as the matcher normalised them. */
const exactKey = (p: IndexPatient['person']) => `${p.given}|${p.family}|${p.birthDate}`;

/** The index patients by exact-rule key: a merged-away record stands for its survivor, one person once under a key. */
function exactKeys(index: IndexView): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const patient of [...[...index.byId.values()].map((v) => v.patient), ...index.mergedAway.values()]) {
    const k = exactKey(patient.person);
    const id = patient.survivor ?? patient.id;
    const ids = out.get(k);
    if (!ids) out.set(k, [id]);
    else if (!ids.includes(id)) ids.push(id);
  }
  return out;
}

/** One set: a fresh store, its index loaded, each roster run and scored. */
async function runSet(set: SetName): Promise<Figures[]> {
  const t0 = performance.now();
  const secs = (t: number) => round((performance.now() - t) / 1000, 2);
  const work = await fs.mkdtemp(path.join(os.tmpdir(), `rostermatch-accuracy-${set}-`));
  const out: Figures[] = [];
  let db: Db | undefined;
  try {
    let prepared: Prepared;
    try {
      prepared = await prepare(set, DATA, work);
      db = await openStore({ embeddedDir: path.join(work, 'db') });
    } catch (e) {
      console.error(`${set}: FAILED: ${message(e)}`);
      out.push({ set, label: set, error: message(e) });
      return out;
    }
    const tl = performance.now();
    const load = await loadIndexFile(db, prepared.indexFile);
    const indexLoadSeconds = secs(tl);
    if (load.rejected > 0) console.error(`${set}: ${load.rejected} index lines rejected, first: line ${load.rejections[0]?.line}: ${load.rejections[0]?.reason}`);
    const index = await readIndex(prepared.indexFile);
    const byExactKey = exactKeys(index);
    // A merged-away patient loaded as such is a created one in the load's counts: the store says how many it holds.
    const { rows: stored } = await db.query<{ n: string | number }>('SELECT count(*) AS n FROM patient WHERE replaced_by IS NOT NULL AND removed_at IS NULL');
    const indexMerged = Number(stored[0]?.n ?? 0);
    if (indexMerged !== index.mergedAway.size) console.error(`${set}: the store holds ${indexMerged} merged-away patients, the in-memory view of the file ${index.mergedAway.size} as candidates`);
    const base = { set, indexPatients: load.patients.inserted + load.patients.updated + load.patients.unchanged, indexMerged, indexRejected: load.rejected, indexLoadSeconds };
    for (const spec of prepared.rosters) {
      try {
        const pipeline = await loadPipelineFile(spec.pipelineFile);
        const tr = performance.now();
        const run = await runFile(db, createLogger('silent'), {
          file: spec.file,
          pipeline,
          outDir: path.join(work, 'out'),
          exportsDir: path.join(work, 'exports'),
          force: true,
        });
        if (run.kind === 'duplicate') throw new Error('the run was taken for a duplicate file');
        const runSeconds = secs(tr);
        const misses: string[][] = [MISS_HEADER];
        const f: Figures = { ...base, label: spec.label, runSeconds, ...(await scoreRoster(db, run.run.id, spec, pipeline, index, byExactKey, misses)) };
        if (values.misses) {
          await fs.mkdir(values.misses, { recursive: true });
          await writeCsv(path.join(values.misses, `${spec.label}.misses.csv`), misses);
        }
        out.push(f);
      } catch (e) {
        console.error(`${spec.label}: FAILED: ${message(e)}`);
        out.push({ ...base, label: spec.label, error: message(e) });
      }
    }
  } finally {
    await db?.close().catch(() => {});
    await fs.rm(work, { recursive: true, force: true });
    const wall = secs(t0);
    for (const f of out) f.setWallSeconds = wall;
  }
  return out;
}

function message(e: unknown): string {
  const err = e as { code?: string; message?: string };
  // A RostermatchError's message already names its code and where (file, line, field).
  return err.message ?? String(e);
}

// --- Main. -------------------------------------------------------------------------------

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const COLUMNS: [string, number, (f: Figures) => string][] = [
  ['set', 26, (f) => f.label],
  ['index', 6, (f) => String(f.indexPatients ?? '')],
  ['rows', 6, (f) => String(f.rows)],
  ['matched', 12, (f) => `${f.counts!.matched} ${pct(f.shares!.matched)}`],
  ['review', 11, (f) => `${f.counts!.review} ${pct(f.shares!.review)}`],
  ['no_match', 11, (f) => `${f.counts!.no_match} ${pct(f.shares!.no_match)}`],
  ['invalid', 11, (f) => `${f.counts!.invalid} ${pct(f.shares!.invalid)}`],
  ['false', 5, (f) => String(f.falseMatches)],
  ['precision', 9, (f) => f.precision!.toFixed(4)],
  ['recall', 6, (f) => f.recall!.toFixed(4)],
  ['exact R', 7, (f) => f.exactRule!.recall.toFixed(4)],
  ['R/exact', 7, (f) => `${f.recallToExactRule!.toFixed(2)}×`],
  ['found', 6, (f) => f.foundRecall!.toFixed(4)],
  ['pairs-comp', 10, (f) => f.pairsCompleteness!.toFixed(4)],
  ['cand/row', 8, (f) => f.candidatesPerRow!.mean.toFixed(2)],
  ['p99', 4, (f) => String(f.candidatesPerRow!.p99)],
  ['load s', 6, (f) => f.indexLoadSeconds!.toFixed(1)],
  ['run s', 6, (f) => f.runSeconds!.toFixed(1)],
  ['wall s', 6, (f) => f.setWallSeconds!.toFixed(1)],
];
const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(COLUMNS[i]![1]) : c.padStart(COLUMNS[i]![1]))).join('  ');

const t0 = performance.now();
const all: Figures[] = [];
console.log(line(COLUMNS.map(([h]) => h)));
for (const set of ALL_SETS.filter((s) => chosen.includes(s))) {
  const figures = await runSet(set);
  for (const f of figures) {
    all.push(f);
    if (f.error) console.log(`${f.label.padEnd(COLUMNS[0]![1])}  FAILED: ${f.error}${f.setWallSeconds !== undefined ? ` (${f.setWallSeconds.toFixed(1)} s)` : ''}`);
    else console.log(line(COLUMNS.map(([, , cell]) => cell(f))));
  }
}
const totalSeconds = round((performance.now() - t0) / 1000, 1);
console.log(`total ${totalSeconds} s; review = possible + ambiguous; exact R = recall of the floor, one index patient with the same given, family and birth date; found = auto-matched or listed for review; pairs-comp over valid in-index rows`);

// The merged sets' two variants side by side: the same rows, the merged records kept (standing for their survivor) or left out.
interface MergedComparison {
  set: string;
  mergedRecords: number;
  rows: number;
  kept: { matched: number; review: number; noMatch: number; falseMatches: number; precision: number; recall: number; foundRecall: number };
  dropped: MergedComparison['kept'];
  /** Rows rightly auto-matched only with the merged records kept, and only without them. */
  rightOnlyKept: number;
  rightOnlyDropped: number;
  /** Rows whose outcome differs between the two. */
  outcomeChanged: number;
  mergedAwayIds: { matched: number; listed: number };
}
const comparisons: MergedComparison[] = [];
for (const kept of all) {
  const m = /^(febrl\d-merged(?:-swap)?)$/.exec(kept.label);
  const dropped = m && all.find((f) => f.label === `${m[1]}-dropped`);
  if (!m || !dropped || kept.error || dropped.error) continue;
  const a = seenRows.get(kept.label)!;
  const b = seenRows.get(dropped.label)!;
  let rightOnlyKept = 0;
  let rightOnlyDropped = 0;
  let outcomeChanged = 0;
  for (const [id, x] of a) {
    const y = b.get(id);
    if (x.right && !y?.right) rightOnlyKept++;
    if (y?.right && !x.right) rightOnlyDropped++;
    if (x.outcome !== y?.outcome) outcomeChanged++;
  }
  const side = (f: Figures): MergedComparison['kept'] => ({
    matched: f.counts!.matched, review: f.counts!.review, noMatch: f.counts!.no_match, falseMatches: f.falseMatches!, precision: f.precision!, recall: f.recall!, foundRecall: f.foundRecall!,
  });
  comparisons.push({ set: m[1]!, mergedRecords: kept.indexMerged!, rows: kept.rows!, kept: side(kept), dropped: side(dropped), rightOnlyKept, rightOnlyDropped, outcomeChanged, mergedAwayIds: kept.mergedAwayIds! });
}
if (comparisons.length > 0) {
  console.log('\nmerged records as candidates standing for their survivor (kept, -merged) or not candidates (dropped, -merged-dropped), the same rows:');
  const cells = (c: MergedComparison['kept']) => [c.matched, c.review, c.noMatch, c.falseMatches, c.precision.toFixed(4), c.recall.toFixed(4), c.foundRecall.toFixed(4)];
  printColumns(
    ['set', 'merged', 'rows', 'variant', 'matched', 'review', 'no_match', 'false', 'precision', 'recall', 'found', 'right only here', 'outcome differs', 'merged id matched/listed'],
    comparisons.flatMap((c) => [
      // febrlN-swap for febrlN-merged-swap: the column stays as wide as febrlN-merged.
      [c.set.replace(/-merged-swap$/, '-swap'), c.mergedRecords, c.rows, 'kept', ...cells(c.kept), c.rightOnlyKept, c.outcomeChanged, `${c.mergedAwayIds.matched}/${c.mergedAwayIds.listed}`],
      ['', '', '', 'dropped', ...cells(c.dropped), c.rightOnlyDropped, '', ''],
    ]),
  );
  if (comparisons.some((c) => c.set.endsWith('-swap'))) {
    console.log('febrlN-swap: febrlN-merged-swap and -merged-swap-dropped, the roles swapped: the original merged into the first duplicate (the survivor), the rows carrying the demographics of the original merged away');
  }
}
const underMergedId = all.filter((f) => f.mergedAwayIds && (f.mergedAwayIds.matched > 0 || f.mergedAwayIds.listed > 0));
for (const f of underMergedId) console.error(`${f.label}: ${f.mergedAwayIds!.matched} rows matched to, ${f.mergedAwayIds!.listed} listing a candidate under, a merged-away patient's own id: a match names the survivor`);
if (values.json) {
  await fs.writeFile(values.json, `${JSON.stringify({ ...measuredOn(), data: DATA, totalSeconds, sets: all, mergedComparisons: comparisons }, null, 2)}\n`);
}
if (all.some((f) => f.error) || underMergedId.length > 0) process.exitCode = 1;
