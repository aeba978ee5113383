/**
 * Quality floor on the committed sample set: the three partner files against their ground truth.
 * A change that lets a false match through, or loses true matches, fails here.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'csv-parse/sync';
import fs from 'node:fs/promises';
import { DEMO_FILES } from '../src/cli/demo.ts';
import { accuracy, readTruth } from '../src/evaluate/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { loadPartnerPipeline } from '../src/pipeline/index.ts';
import { runFile } from '../src/run/index.ts';
import { readRunResults, type Db } from '../src/store/index.ts';
import type { RowResult } from '../src/model/index.ts';
import { quietLog, tempDb } from './helpers.ts';

const results = new Map<string, RowResult[]>();

beforeAll(async () => {
  const { db, dir }: { db: Db; dir: string } = await tempDb();
  await loadIndexFile(db, 'samples/iis/Patient.ndjson');
  for (const { partner, file } of DEMO_FILES) {
    const out = await runFile(db, quietLog, {
      file: path.join('samples/rosters', file),
      pipeline: await loadPartnerPipeline('pipelines', partner),
      outDir: path.join(dir, 'out'),
      exportsDir: path.join(dir, 'exports'),
    });
    results.set(file, await readRunResults(db, out.run.id));
  }
}, 120_000);

const truthFile = (file: string) => path.join('samples/truth', file.replace(/\.[^.]+$/, '.truth.csv'));

describe.each(DEMO_FILES.map((d) => d.file))('matching %s against its ground truth', (file) => {
  it('auto-matches with precision ≥ 0.999 and recall ≥ 0.97', async () => {
    const rows = results.get(file)!;
    const a = accuracy(
      rows.map((r) => ({ recordId: r.recordId, outcome: r.outcome, patientId: r.patientId, candidateIds: r.candidates.map((c) => c.patientId) })),
      await readTruth(truthFile(file)),
    );
    expect(a.precision).toBeGreaterThanOrEqual(0.999);
    expect(a.recall).toBeGreaterThanOrEqual(0.97);
  });

  it('never matches a twin or a Jr/Sr to the other', async () => {
    const truth = parse(await fs.readFile(truthFile(file)), { columns: true }) as Record<string, string>[];
    const related = truth.filter((t) => t.relation);
    expect(related.length).toBeGreaterThan(10);
    const byId = new Map(results.get(file)!.map((r) => [r.recordId, r]));
    for (const t of related) {
      const other = t.relation!.split(':')[1];
      expect(byId.get(t.record_id!)?.patientId, `${t.record_id} vs ${other}`).not.toBe(other);
    }
  });

  it('loses no row of a person in the index as invalid, and never auto-matches a row short of evidence', async () => {
    const truth = parse(await fs.readFile(truthFile(file)), { columns: true }) as Record<string, string>[];
    const byId = new Map(results.get(file)!.map((r) => [r.recordId, r]));
    // Every generated row names someone with a name and an address: none is lost.
    expect([...byId.values()].filter((r) => r.outcome === 'invalid').map((r) => r.recordId)).toEqual([]);
    // A blank family name or an unreadable birth date is missing evidence: without an identifier
    // standing in, the row goes to a person, with the right patient offered.
    const short = truth.filter((t) => /blank_family|missing_dob|impossible_dob|future_dob/.test(t.errors ?? '') && t.patient_id);
    expect(short.length).toBeGreaterThan(2);
    for (const t of short) {
      const r = byId.get(t.record_id!)!;
      if (r.outcome === 'matched') {
        expect(r.candidates[0]!.comparisons.find((c) => c.field.startsWith('identifier'))?.level, t.record_id).toBe('agree');
        expect(r.patientId).toBe(t.patient_id);
      } else expect(r.candidates.map((c) => c.patientId), t.record_id).toContain(t.patient_id);
    }
  });
});
