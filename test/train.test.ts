import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LEVELS, mergeLevels } from '../src/match/index.ts';
import { estimateM, estimateU, type LevelVector } from '../src/match/train.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { loadPartnerPipeline, parsePipeline } from '../src/pipeline/index.ts';
import { levelsFor, trainModel } from '../src/run/index.ts';
import { trainedModel } from '../src/store/index.ts';
import { tempDb } from './helpers.ts';

/** A seeded stream of uniform numbers in [0, 1). */
function uniform(seed: number): () => number {
  let s = seed;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function draw(r: () => number, dist: Record<string, number>): string {
  let x = r();
  for (const [level, p] of Object.entries(dist)) if ((x -= p) < 0) return level;
  return Object.keys(dist).at(-1)!;
}

describe('estimating the model from data', () => {
  it('recovers known m probabilities and the match share by EM with u fixed', () => {
    const r = uniform(42);
    const mGiven = { exact: 0.8, nickname: 0.05, typo: 0.05, token: 0, middle_as_given: 0, phonetic: 0.02, initial: 0, different: 0.08 };
    const mDob = { exact: 0.9, day_month_swap: 0.02, typo: 0.04, different: 0.04 };
    const uGiven = { exact: 0.01, nickname: 0.002, typo: 0.002, token: 0, middle_as_given: 0, phonetic: 0.01, initial: 0, different: 0.976 };
    const uDob = { exact: 0.001, day_month_swap: 0.0005, typo: 0.005, different: 0.9935 };
    const vectors: LevelVector[] = [];
    for (let i = 0; i < 6000; i++) vectors.push({ given: draw(r, mGiven), birthDate: draw(r, mDob), sex: r() < 0.97 ? 'agree' : 'different' });
    for (let i = 0; i < 4000; i++) vectors.push({ given: draw(r, uGiven), birthDate: draw(r, uDob), sex: r() < 0.5 ? 'agree' : 'different' });
    const levels = mergeLevels({
      given: Object.fromEntries(Object.entries(uGiven).map(([l, u]) => [l, { u: Math.max(u, 1e-6) }])),
      birthDate: Object.fromEntries(Object.entries(uDob).map(([l, u]) => [l, { u }])),
    });
    const em = estimateM(vectors, levels);
    expect(em.lambda).toBeCloseTo(0.6, 1);
    expect(em.m.given!.exact!.m).toBeCloseTo(0.8, 1);
    expect(em.m.birthDate!.exact!.m).toBeCloseTo(0.9, 1);
    expect(em.m.birthDate!.different!.m).toBeLessThan(0.1);
  });

  it('takes u from random pairs only for levels seen often enough by chance', () => {
    const vectors: LevelVector[] = [...Array.from({ length: 990 }, () => ({ given: 'different' })), ...Array.from({ length: 10 }, () => ({ given: 'exact' }))];
    const u = estimateU(vectors);
    expect(u.given!.different!.u).toBeCloseTo(0.99, 5);
    expect(u.given!.exact).toBeUndefined(); // 10 chance agreements: too few to say
  });

  it('trains a partner\'s model, stores it, and its pipeline file overrides it', async () => {
    const { db } = await tempDb();
    await loadIndexFile(db, 'samples/iis/Patient.ndjson');
    const pipeline = await loadPartnerPipeline('pipelines', 'riverside-clinic');
    const model = await trainModel(db, pipeline, path.join('samples/rosters/riverside-panel.csv'), { randomPairs: 20_000 });
    expect(model.blockedPairs).toBeGreaterThan(600);
    expect((await trainedModel(db, 'riverside-clinic'))?.lambda).toBeCloseTo(model.lambda, 6);
    const trained = await levelsFor(db, pipeline);
    expect(trained.birthDate.exact.m).not.toBe(DEFAULT_LEVELS.birthDate.exact.m);
    const overridden = await levelsFor(db, { ...pipeline, model: { birthDate: { exact: { m: 0.5 } } } });
    expect(overridden.birthDate.exact).toEqual({ m: 0.5, u: trained.birthDate.exact.u });
  });

  it('names an unknown field or level in a pipeline\'s model', () => {
    const base = 'partner: p\ndisplayName: P\ncolumns: { recordId: id, given: g, family: f, birthDate: d }\ngroup: { id: g1, name: G, mode: replace }\n';
    expect(() => parsePipeline(`${base}model: { given: { exactly: { m: 0.9 } } }\n`, 'p.yaml')).toThrow(/model\.given\.exactly: no level "exactly"/);
    expect(() => parsePipeline(`${base}model: { shoe: { exact: { m: 0.9 } } }\n`, 'p.yaml')).toThrow(/model\.shoe: no field "shoe"/);
    expect(() => parsePipeline(`${base}model: { given: { exact: { m: 1.5 } } }\n`, 'p.yaml')).toThrow(/model\.given\.exact\.m/);
  });
});
