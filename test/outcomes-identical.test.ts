/**
 * The matcher's results, held fixed: every row of every labelled data set is matched as the run
 * stage matches it (normalised by the parse stage, matchChunk over chunks of MATCH_CHUNK_ROWS
 * against an in-memory CandidateIndex of the set's index), and each row's whole result — outcome,
 * chosen patient, score, every listed candidate with its score, probability, field levels and
 * weights and guard — is compared with a committed fixture, as a sha256 of one canonical line a
 * row (plus counts, so a failure says roughly what moved). A speed-up of the matching core must
 * leave this test passing untouched.
 *
 * Sets: the committed samples, a larger generated sample (20,000 patients, 14,000 roster rows),
 * and the external sets bench:accuracy uses (FEBRL 1–3 without and with soc_sec_id, Splink's
 * fake_1000, committed in bench/data).
 *
 * Regenerate the fixture ONLY for a deliberate change of the model or the rules (and say so in
 * the commit), never to make a refactor pass:
 *   UPDATE_OUTCOMES=1 npx vitest run test/outcomes-identical.test.ts
 * To see what changed, write each set's lines before and after the change and diff them:
 *   OUTCOMES_DUMP=/tmp/before npx vitest run test/outcomes-identical.test.ts
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchDataDir, prepare, prepareSamples, readIndex, SETS, type Prepared } from '../src/evaluate/datasets.ts';
import { matchChunk, mergeLevels, type LevelOverrides } from '../src/match/index.ts';
import type { RowResult } from '../src/model/index.ts';
import { readRoster } from '../src/parse/index.ts';
import { loadPipelineFile } from '../src/pipeline/index.ts';
import { MATCH_CHUNK_ROWS } from '../src/run/index.ts';
import { DEFAULT_TODAY, generateSamples } from '../src/samples/index.ts';

const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'outcomes-identical.json');
const UPDATE = process.env.UPDATE_OUTCOMES === '1';
const DUMP = process.env.OUTCOMES_DUMP;
const GENERATED = { patients: 20_000, seed: 7 };

interface Digest {
  rows: number;
  outcomes: Record<string, number>;
  /** Candidates listed over all rows. */
  candidates: number;
  sha256: string;
}
interface Fixture {
  about: string;
  sets: Record<string, Digest>;
}

const ABOUT =
  'Per roster, a sha256 of every row\'s canonical result line and counts (test/outcomes-identical.test.ts). Regenerate only for a deliberate model change: UPDATE_OUTCOMES=1 npx vitest run test/outcomes-identical.test.ts';

/** JSON with object keys sorted and undefined left out: the result as the store's jsonb keeps it, whatever order it was built in. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Every roster of a prepared set, matched as the run stage matches it: one canonical line a row. */
async function matchSet(prepared: Prepared): Promise<Map<string, string[]>> {
  const index = await readIndex(prepared.indexFile);
  const out = new Map<string, string[]>();
  for (const spec of prepared.rosters) {
    const pipeline = await loadPipelineFile(spec.pipelineFile);
    const { rows } = await readRoster(spec.file, pipeline, DEFAULT_TODAY, spec.label);
    const opts = { thresholds: pipeline.thresholds, freq: index.candidates.freq, levels: mergeLevels(pipeline.model as LevelOverrides | undefined) };
    const results: RowResult[] = [];
    for (let i = 0; i < rows.length; i += MATCH_CHUNK_ROWS) results.push(...(await matchChunk(rows.slice(i, i + MATCH_CHUNK_ROWS), index.candidates, opts)));
    out.set(spec.label, results.map(canonical));
  }
  return out;
}

function digest(lines: string[]): Digest {
  const outcomes: Record<string, number> = {};
  let candidates = 0;
  for (const l of lines) {
    const r = JSON.parse(l) as RowResult;
    outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
    candidates += r.candidates.length;
  }
  return { rows: lines.length, outcomes: Object.fromEntries(Object.entries(outcomes).sort()), candidates, sha256: createHash('sha256').update(lines.join('\n')).digest('hex') };
}

let fixture: Fixture;
let work: string;
const seen: Record<string, Digest> = {};

beforeAll(async () => {
  const read = async () => JSON.parse(await fs.readFile(FIXTURE, 'utf8')) as Fixture;
  // Updating keeps the entries of sets this machine cannot run (no external data).
  fixture = UPDATE ? await read().catch(() => ({ about: ABOUT, sets: {} })) : await read();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-outcomes-'));
  if (DUMP) await fs.mkdir(DUMP, { recursive: true });
});

afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
  if (UPDATE) {
    const sets = Object.fromEntries(Object.entries({ ...fixture.sets, ...seen }).sort(([a], [b]) => a.localeCompare(b)));
    await fs.writeFile(FIXTURE, `${JSON.stringify({ about: ABOUT, sets }, null, 2)}\n`);
  }
});

/** Matches a set and holds each roster's digest to the fixture (or records it, when updating). */
async function check(prepared: Prepared): Promise<void> {
  for (const [label, lines] of await matchSet(prepared)) {
    if (DUMP) await fs.writeFile(path.join(DUMP, `${label}.ndjson`), `${lines.join('\n')}\n`);
    const d = digest(lines);
    seen[label] = d;
    if (!UPDATE) expect(d, `${label}: results differ from test/fixtures/outcomes-identical.json`).toEqual(fixture.sets[label]);
  }
}

describe('matching results are identical to the committed fixture', () => {
  it('on the committed samples', () => check(prepareSamples()));

  it(`on a generated sample of ${GENERATED.patients} patients`, async () => {
    const dir = path.join(work, 'generated');
    await generateSamples({ ...GENERATED, outDir: dir, immunizations: false });
    await check(prepareSamples(dir, `generated${GENERATED.patients}`));
  });

  const data = benchDataDir();
  const external = SETS.filter((s) => s !== 'samples');
  it.each(external)('on %s', async (set) => {
    const dir = path.join(work, set);
    await fs.mkdir(dir);
    await check(await prepare(set, data, dir));
  });
});
