/**
 * `npm run demo`: the whole flat-file path on the committed samples, in one process on the
 * embedded store. Re-running it on the same data folder shows idempotency: the index reloads as
 * unchanged and each file is recognised as already processed.
 */
import path from 'node:path';
import { fileExists } from '../intake/drop.ts';
import { accuracy, readTruth } from '../evaluate/index.ts';
import { loadIndexFile } from '../patient-index/index.ts';
import { loadPartnerPipeline } from '../pipeline/index.ts';
import { runFile } from '../run/index.ts';
import { readRunResults } from '../store/index.ts';
import type { Context } from './context.ts';
import { printLoad, printRun } from './print.ts';

export const DEMO_FILES = [
  { partner: 'school-district-7', file: 'district7-fall.csv' },
  { partner: 'acme-health-plan', file: 'acme-members-202611.txt' },
  { partner: 'riverside-clinic', file: 'riverside-panel.csv' },
] as const;

export async function runDemo(ctx: Context, samplesDir: string): Promise<void> {
  const t0 = performance.now();
  console.log(`rostermatch demo — embedded database and outputs in ${ctx.paths.dataDir}\n`);
  for (const f of ['Patient.ndjson', 'Immunization.ndjson']) console.log(printLoad(await loadIndexFile(ctx.db, path.join(samplesDir, 'iis', f))));
  for (const { partner, file } of DEMO_FILES) {
    console.log('');
    const pipeline = await loadPartnerPipeline(ctx.pipelinesDir, partner);
    const out = await runFile(ctx.db, ctx.log, {
      file: path.join(samplesDir, 'rosters', file),
      pipeline,
      outDir: path.join(ctx.paths.dropRoot, partner, 'outbound'),
      exportsDir: ctx.paths.exportsDir,
      snapshotDir: ctx.paths.snapshotDir,
      actor: 'demo',
    });
    console.log(printRun(out));
    const truthFile = path.join(samplesDir, 'truth', file.replace(/\.[^.]+$/, '.truth.csv'));
    if (await fileExists(truthFile)) {
      const rows = await readRunResults(ctx.db, out.run.id);
      const a = accuracy(
        rows.map((r) => ({ recordId: r.recordId, outcome: r.outcome, patientId: r.patientId, candidateIds: r.candidates.map((c) => c.patientId) })),
        await readTruth(truthFile),
      );
      console.log(
        `  vs ground truth: precision ${a.precision.toFixed(4)}, recall ${a.recall.toFixed(4)}, F1 ${a.f1.toFixed(4)}; ` +
          `${a.falseMatches} false matches, ${a.reviewWithTruth} true people sent to review, ${a.inIndex} of ${a.rows} rows are in the index`,
      );
    }
  }
  console.log(`\ndone in ${((performance.now() - t0) / 1000).toFixed(1)} s — try: npx rostermatch group show school-district-7-students --data-dir ${ctx.paths.dataDir}`);
}
