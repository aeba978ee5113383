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

  it('makes invalid only the rows that cannot identify anyone, and sends rows short of evidence to a person', async () => {
    const truth = parse(await fs.readFile(truthFile(file)), { columns: true }) as Record<string, string>[];
    const pipeline = await loadPartnerPipeline('pipelines', DEMO_FILES.find((d) => d.file === file)!.partner);
    const hasIdentifier = pipeline.identifier !== undefined || pipeline.identifiers.length > 0;
    // No birth date a format reads, and no identifier to stand in for it.
    const expected = hasIdentifier ? [] : truth.filter((t) => /missing_dob|impossible_dob|future_dob/.test(t.errors ?? '')).map((t) => t.record_id).sort();
    const byId = new Map(results.get(file)!.map((r) => [r.recordId, r]));
    const got = [...byId.values()].filter((r) => r.outcome === 'invalid').map((r) => r.recordId).sort();
    expect(got).toEqual(expected);
    // A blank family name is missing evidence: never an auto-match without an identifier, but offered with the right patient.
    const blankFamily = truth.filter((t) => /blank_family/.test(t.errors ?? '') && t.patient_id);
    expect(blankFamily.length).toBeGreaterThan(0);
    for (const t of blankFamily) {
      const r = byId.get(t.record_id!)!;
      if (r.outcome === 'matched') {
        expect(hasIdentifier, t.record_id).toBe(true);
        expect(r.patientId).toBe(t.patient_id);
      } else expect(r.candidates.map((c) => c.patientId), t.record_id).toContain(t.patient_id);
    }
  });
});
