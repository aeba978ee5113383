/**
 * `rostermatch model train`: estimate a partner's model from its own file and the index. u comes
 * from random pairs of index patients, m from EM over the file's blocked pairs; the result is
 * stored for the partner and used by its later runs, under any overrides in its pipeline file.
 */
import { comparePair, firstKeys } from '../match/index.ts';
import { placeholderNames } from '../normalise/index.ts';
import { estimateM, estimateU, levelVector, type LevelVector } from '../match/train.ts';
import { mergeLevels, type LevelOverrides, type Levels } from '../match/model.ts';
import type { IndexPatient } from '../model/index.ts';
import { readRoster } from '../parse/index.ts';
import type { Pipeline } from '../pipeline/index.ts';
import { matchablePatients, saveTrainedModel, trainedModel, type Queryable, type TrainedModel } from '../store/index.ts';
import { candidatesFor } from './candidates.ts';

export interface TrainOptions {
  /** Random pairs for u. @defaultValue 200000 */
  randomPairs?: number;
  /** Seed of the pair sampler, so training is repeatable. @defaultValue 1 */
  seed?: number;
}

export async function trainModel(db: Queryable, pipeline: Pipeline, file: string, o: TrainOptions = {}): Promise<TrainedModel> {
  const { source, freq } = await candidatesFor(db, 'memory');
  const ctx = { freq };

  // u: random pairs drawn from a sample of the index.
  const sample: IndexPatient[] = [];
  for await (const page of matchablePatients(db)) {
    sample.push(...page);
    if (sample.length >= 50_000) break;
  }
  const next = lcg(o.seed ?? 1);
  const randomVectors: LevelVector[] = [];
  const wanted = sample.length < 2 ? 0 : (o.randomPairs ?? 200_000);
  for (let i = 0; i < wanted; i++) {
    const a = sample[next() % sample.length]!;
    const b = sample[next() % sample.length]!;
    if (a.id !== b.id) randomVectors.push(levelVector(comparePair({ person: a.person, identifiers: [], placeholder: placeholderNames(a.person.given, a.person.family) }, b, ctx).comparisons));
  }
  const u = estimateU(randomVectors);

  // m: EM over the file's blocked pairs, u held at its estimate.
  const { rows } = await readRoster(file, pipeline, new Date().toISOString().slice(0, 10));
  const blocked: LevelVector[] = [];
  for (const row of rows) {
    if (row.kind !== 'valid') continue;
    const keys = firstKeys(row);
    const hits = await source.byKeys(keys);
    const seen = new Set<string>();
    for (const list of hits.values()) {
      for (const cand of list) {
        if (seen.has(cand.id)) continue;
        seen.add(cand.id);
        blocked.push(levelVector(comparePair(row, cand, ctx).comparisons));
      }
    }
  }
  const start: Levels = mergeLevels(u);
  const em = estimateM(blocked, start);
  const levels: LevelOverrides = mergeOverrides(u, em.m);
  const model: TrainedModel = {
    partner: pipeline.partner,
    levels: levels as TrainedModel['levels'],
    lambda: em.lambda,
    blockedPairs: blocked.length,
    randomPairs: randomVectors.length,
    trainedAt: new Date().toISOString(),
  };
  await saveTrainedModel(db, model);
  return model;
}

/** The levels a partner's runs use: defaults, its trained model, then its pipeline's overrides. */
export async function levelsFor(db: Queryable, pipeline: Pipeline): Promise<Levels> {
  const trained = await trainedModel(db, pipeline.partner);
  return mergeLevels(trained?.levels as LevelOverrides | undefined, pipeline.model as LevelOverrides | undefined);
}

function mergeOverrides(a: LevelOverrides, b: LevelOverrides): LevelOverrides {
  const out: Record<string, Record<string, object>> = structuredClone(a) as never;
  for (const [f, levels] of Object.entries(b)) {
    out[f] ??= {};
    for (const [l, mu] of Object.entries(levels ?? {})) out[f][l] = { ...(out[f][l] ?? {}), ...mu };
  }
  return out as LevelOverrides;
}

/** A small seeded generator: repeatable sampling without a dependency. */
function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}
