/**
 * The matching core's speed: comparisons (candidate pairs scored) per second per core. A generated
 * index goes into an in-memory CandidateIndex, a generated school roster is normalised, and
 * matchChunk matches it chunk by chunk as the run stage does. No store and no queue are involved.
 *
 *   npm run bench:pairs -- [--patients N] [--rows N] [--seed N] [--repeat N] [--json FILE]
 *
 * The match loop is single-threaded, so pairs/s per core is pairs over the process's CPU seconds
 * (process.cpuUsage, GC helper threads included). The CPU spent inside CandidateIndex.byKeys is
 * measured apart, as candidate look-up; the rest of matchChunk is blocking keys, comparison and
 * classification. Pairs are counted outside the timed loop (see countPairs), so production code
 * carries no counter. Two loops over the very same pairs put the figure in proportion: comparePair
 * alone, and a floor that only tests the pair's fields for equality — the least any comparison
 * can cost. Splink's published ≈128,000 pairs/s per vCPU is the external reference.
 */
import fs from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { benchArgs } from './args.ts';
import { measuredOn, printTable } from './report.ts';
import { CandidateIndex, comparePair, firstKeys, matchChunk, mergeLevels, secondKeys, type CandidateSource, type LevelOverrides, type MatchOptions } from '../src/match/index.ts';
import type { IndexPatient, NormalisedRow } from '../src/model/index.ts';
import { readRoster } from '../src/parse/index.ts';
import { patientFromFhir, type FhirPatient } from '../src/patient-index/fhir.ts';
import { loadPartnerPipeline } from '../src/pipeline/index.ts';
import { MATCH_CHUNK_ROWS } from '../src/run/index.ts';
import { DEFAULT_TODAY, generateSamples } from '../src/samples/index.ts';

const USAGE = `usage: npm run bench:pairs -- [--patients N] [--rows N] [--seed N] [--repeat N] [--json FILE]
  --patients  index patients (default 200000; 1000000 for the issue's million)
  --rows      roster rows (default 20000)
  --seed      generator seed (default 7)
  --repeat    timed passes over the roster; the least CPU counts (default 5)
  --json      write every figure to FILE`;

const values = benchArgs(
  { patients: { type: 'string', default: '200000' }, rows: { type: 'string', default: '20000' }, seed: { type: 'string', default: '7' }, repeat: { type: 'string', default: '5' }, json: { type: 'string' } },
  USAGE,
);
const [patients, rosterRows, seed, repeat] = [values.patients, values.rows, values.seed, values.repeat].map(Number) as [number, number, number, number];
if (![patients, rosterRows, repeat].every((n) => Number.isSafeInteger(n) && n > 0) || !Number.isSafeInteger(seed)) {
  console.error(`--patients, --rows and --repeat are positive integers, --seed an integer\n${USAGE}`);
  process.exit(2);
}

/** Splink's published throughput per vCPU, as issue 11 cites it. */
const SPLINK_PAIRS_PER_VCPU = 128_000;

type ValidRow = Extract<NormalisedRow, { kind: 'valid' }>;

/** CPU seconds (user + system, every thread of the process) since `from`. */
const cpuSince = (from: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
};

/** Streams the index NDJSON into a sealed CandidateIndex: a million patients' text is too long for one string. */
async function loadIndex(file: string): Promise<CandidateIndex> {
  const index = new CandidateIndex();
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (line.trim() === '') continue;
    const p = patientFromFhir(JSON.parse(line) as FhirPatient);
    if (!p.replacedBy) index.add(p);
  }
  return index.seal();
}

const chunksOf = <T>(xs: readonly T[]) => Array.from({ length: Math.ceil(xs.length / MATCH_CHUNK_ROWS) }, (_, i) => xs.slice(i * MATCH_CHUNK_ROWS, (i + 1) * MATCH_CHUNK_ROWS));

interface Pass {
  wallSeconds: number;
  cpuSeconds: number;
  lookupCpuSeconds: number;
}

/** One timed pass of the run stage's loop; the index's look-ups timed apart. */
async function timedPass(chunks: readonly NormalisedRow[][], index: CandidateIndex, opts: MatchOptions): Promise<Pass> {
  let lookup = 0;
  const source: CandidateSource = {
    byKeys(keys) {
      const t = process.cpuUsage();
      const blocks = index.byKeys(keys);
      lookup += cpuSince(t);
      return blocks;
    },
  };
  const w = performance.now();
  const c = process.cpuUsage();
  for (const chunk of chunks) await matchChunk(chunk, source, opts);
  return { cpuSeconds: cpuSince(c), wallSeconds: (performance.now() - w) / 1000, lookupCpuSeconds: lookup };
}

interface Pairs {
  rows: ValidRow[];
  cands: IndexPatient[];
  firstRound: number;
  secondRound: number;
  /** Valid rows, and those of them the first round leaves unmatched (they look up the second round). */
  valid: ValidRow[];
  again: number[];
}

/**
 * The pairs matchChunk compares, without a counter in it: a row's first-round candidates (the
 * distinct patients its first keys reach), and for a row the first round leaves unmatched, the
 * second round's new ones. Which rows those are is asked of matchChunk itself, over a source that
 * answers the second round with nothing — so every row keeps its first-round outcome.
 */
async function countPairs(chunks: readonly NormalisedRow[][], index: CandidateIndex, opts: MatchOptions): Promise<Pairs> {
  const out: Pairs = { rows: [], cands: [], firstRound: 0, secondRound: 0, valid: [], again: [] };
  for (const chunk of chunks) {
    let calls = 0;
    const firstOnly: CandidateSource = { byKeys: (keys) => (calls++ === 0 ? index.byKeys(keys) : new Map()) };
    const firstOutcomes = await matchChunk(chunk, firstOnly, opts);
    chunk.forEach((row, i) => {
      if (row.kind !== 'valid') return;
      const first = firstKeys(row);
      const seen = new Set<string>();
      const take = (blocks: Map<string, IndexPatient[]>) => {
        let n = 0;
        for (const list of blocks.values()) {
          for (const p of list) {
            if (seen.has(p.id)) continue;
            seen.add(p.id);
            out.rows.push(row);
            out.cands.push(p);
            n++;
          }
        }
        return n;
      };
      out.valid.push(row);
      out.firstRound += take(index.byKeys(first));
      if (firstOutcomes[i]!.outcome === 'matched') return;
      out.again.push(out.valid.length - 1);
      out.secondRound += take(index.byKeys(secondKeys(row, first)));
    });
  }
  return out;
}

/** Runs `body` over and over until it has taken `minCpu` CPU seconds: its CPU seconds per run. */
function cpuPerRun(body: () => void, minCpu = 0.5): number {
  body(); // once untimed, so the JIT has seen it
  let runs = 0;
  const c = process.cpuUsage();
  let spent = 0;
  while (spent < minCpu) {
    body();
    runs++;
    spent = cpuSince(c);
  }
  return spent / runs;
}

/** The floor: only the equality tests of the fields comparePair reads, over the same pairs. */
function floorLoop(p: Pairs): number {
  let agree = 0;
  for (let i = 0; i < p.rows.length; i++) {
    const r = p.rows[i]!.person;
    const c = p.cands[i]!.person;
    agree +=
      (r.given === c.given ? 1 : 0) + (r.family === c.family ? 1 : 0) + (r.middle === c.middle ? 1 : 0) + (r.suffix === c.suffix ? 1 : 0) + (r.birthDate === c.birthDate ? 1 : 0) +
      (r.sex === c.sex ? 1 : 0) + (r.zip === c.zip ? 1 : 0) + (r.street === c.street ? 1 : 0) + (r.phone === c.phone ? 1 : 0);
  }
  return agree;
}

const work = await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-pairs-'));
try {
  let t = performance.now();
  await generateSamples({ patients, seed, outDir: work, rosterRows: { school: rosterRows, payer: 1, clinic: 1 }, immunizations: false });
  const generateSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  const index = await loadIndex(path.join(work, 'iis', 'Patient.ndjson'));
  const loadSeconds = (performance.now() - t) / 1000;
  const pipeline = await loadPartnerPipeline('pipelines', 'school-district-7');
  const { rows } = await readRoster(path.join(work, 'rosters', 'district7-fall.csv'), pipeline, DEFAULT_TODAY);
  const opts: MatchOptions = { thresholds: pipeline.thresholds, freq: index.freq, levels: mergeLevels(pipeline.model as LevelOverrides | undefined) };
  const chunks = chunksOf(rows);
  const pairs = await countPairs(chunks, index, opts);
  const n = pairs.rows.length;

  await timedPass(chunks.slice(0, 4), index, opts); // warm-up: the JIT, the phonetic cache's first names
  const passes: Pass[] = [];
  for (let i = 0; i < repeat; i++) passes.push(await timedPass(chunks, index, opts));
  const best = passes.reduce((a, b) => (b.cpuSeconds < a.cpuSeconds ? b : a));

  const ctx = { freq: opts.freq, levels: opts.levels };
  const compareCpu = cpuPerRun(() => {
    for (let i = 0; i < n; i++) comparePair(pairs.rows[i]!, pairs.cands[i]!, ctx);
  });
  const floorCpu = cpuPerRun(() => void floorLoop(pairs));
  // The blocking keys matchChunk computes (blocking.ts), apart: the match loop's CPU less the
  // look-up and these is what comparison and classification cost.
  const keysCpu = cpuPerRun(() => {
    const first = pairs.valid.map((row) => firstKeys(row));
    for (const i of pairs.again) secondKeys(pairs.valid[i]!, first[i]);
  });
  const matchCoreCpu = best.cpuSeconds - best.lookupCpuSeconds - keysCpu;

  const perSecond = (count: number, s: number) => Math.round(count / s);
  const figures = {
    ...measuredOn(),
    patients: index.size,
    rosterRows: rows.length,
    validRows: rows.filter((r) => r.kind === 'valid').length,
    seed,
    generateSeconds: +generateSeconds.toFixed(1),
    indexLoadSeconds: +loadSeconds.toFixed(1),
    pairs: n,
    pairsFirstRound: pairs.firstRound,
    pairsSecondRound: pairs.secondRound,
    pairsPerRow: +(n / rows.length).toFixed(2),
    passes: passes.map((p) => ({ wallSeconds: +p.wallSeconds.toFixed(3), cpuSeconds: +p.cpuSeconds.toFixed(3), lookupCpuSeconds: +p.lookupCpuSeconds.toFixed(3) })),
    rowsPerSecond: perSecond(rows.length, best.wallSeconds),
    rowsPerCpuSecond: perSecond(rows.length, best.cpuSeconds),
    pairsPerCoreSecond: perSecond(n, best.cpuSeconds),
    lookupShare: +(best.lookupCpuSeconds / best.cpuSeconds).toFixed(3),
    keysShare: +(keysCpu / best.cpuSeconds).toFixed(3),
    compareClassifyShare: +(matchCoreCpu / best.cpuSeconds).toFixed(3),
    /** Pairs over the match loop's CPU less the look-up and the blocking keys: comparison and classification. */
    compareClassifyPairsPerCoreSecond: perSecond(n, matchCoreCpu),
    comparePairAlonePerCoreSecond: perSecond(n, compareCpu),
    floorPairsPerCoreSecond: perSecond(n, floorCpu),
    /** How many times the floor's cost a pair takes in the match loop. */
    matchLoopOverFloor: +(best.cpuSeconds / floorCpu).toFixed(1),
    splinkPairsPerVcpu: SPLINK_PAIRS_PER_VCPU,
    overSplink: +(n / best.cpuSeconds / SPLINK_PAIRS_PER_VCPU).toFixed(2),
  };
  const f = (x: number) => x.toLocaleString('en-US');
  const table: [string, string][] = [
    ['index patients', `${f(figures.patients)} (generated in ${figures.generateSeconds} s, loaded in ${figures.indexLoadSeconds} s)`],
    ['roster rows', `${f(figures.rosterRows)} (${f(figures.validRows)} valid)`],
    ['pairs compared', `${f(n)} (${figures.pairsPerRow} a row; first round ${f(pairs.firstRound)}, second ${f(pairs.secondRound)})`],
    ['match loop, least-CPU pass', `${best.cpuSeconds.toFixed(2)} s CPU, ${best.wallSeconds.toFixed(2)} s wall (of ${passes.length} passes: ${passes.map((p) => p.cpuSeconds.toFixed(2)).join(', ')} s CPU)`],
    ['rows/s', `${f(figures.rowsPerSecond)} wall, ${f(figures.rowsPerCpuSecond)} per CPU second`],
    ['pairs/s per core', f(figures.pairsPerCoreSecond)],
    ['  candidate look-up (byKeys)', `${best.lookupCpuSeconds.toFixed(2)} s CPU, ${(figures.lookupShare * 100).toFixed(1)}%`],
    ['  blocking keys (apart)', `${keysCpu.toFixed(2)} s CPU, ${(figures.keysShare * 100).toFixed(1)}%`],
    ['  compare and classify', `${matchCoreCpu.toFixed(2)} s CPU, ${(figures.compareClassifyShare * 100).toFixed(1)}% (${f(figures.compareClassifyPairsPerCoreSecond)} pairs/s per core)`],
    ['comparePair alone', `${f(figures.comparePairAlonePerCoreSecond)} pairs/s per core`],
    ['floor (field equality only)', `${f(figures.floorPairsPerCoreSecond)} pairs/s per core; the match loop costs ${figures.matchLoopOverFloor}x the floor`],
    ['Splink (published)', `≈${f(SPLINK_PAIRS_PER_VCPU)} pairs/s per vCPU; this is ${figures.overSplink}x`],
  ];
  printTable(table);
  if (values.json) await fs.writeFile(values.json, `${JSON.stringify(figures, null, 2)}\n`);
} finally {
  await fs.rm(work, { recursive: true, force: true });
}
