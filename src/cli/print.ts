/** Plain-text renderings for the terminal. Ids and counts only: nothing here prints PHI. */
import type { LoadReport } from '../patient-index/index.ts';
import { describeHold, type RunOutput } from '../run/index.ts';
import { OUTCOMES } from '../model/index.ts';

export function printLoad(r: LoadReport): string {
  const lines = [
    `${r.file}: ${r.lines} lines; patients ${r.patients.inserted} new, ${r.patients.updated} updated, ${r.patients.unchanged} unchanged; ` +
      `immunizations ${r.immunizations.inserted} new, ${r.immunizations.updated} updated, ${r.immunizations.unchanged} unchanged; ${r.rejected} rejected`,
  ];
  for (const x of r.rejections.slice(0, 20)) lines.push(`  rejected ${x.file}:${x.line}: ${x.reason}`);
  if (r.rejected > 20) lines.push(`  … and ${r.rejected - 20} more rejected lines`);
  return lines.join('\n');
}

export function printRun(out: RunOutput): string {
  if (out.kind === 'duplicate') {
    return `duplicate of run ${out.run.id}: these bytes were already processed for ${out.run.partner} at ${out.run.finishedAt}; results: ${out.run.resultPath} (use --force to process again)`;
  }
  const s = out.summary;
  const counts = OUTCOMES.map((o) => `${o} ${s.counts[o]}`).join(', ');
  return [
    `run ${s.runId}: ${s.rows} rows from ${s.file} (${s.partner})`,
    `  outcomes: ${counts}`,
    out.kind === 'held'
      ? `  group ${s.group.id} (${s.group.mode}): HELD, unchanged — ${describeHold(out.hold)}.\n` +
        `    confirm: rostermatch run confirm ${s.runId} --by NAME    discard: rostermatch run discard ${s.runId} --by NAME --reason TEXT`
      : `  group ${s.group.id} (${s.group.mode}): ${s.group.sizeBefore} → ${s.group.sizeAfter} members (+${s.group.added} −${s.group.removed})`,
    `  results: ${out.resultPath}`,
    `  summary: ${out.summaryPath}`,
    `  export:  ${out.kind === 'held' ? 'none (the Group did not change)' : out.export.dir}`,
    `  time:    ${s.timingsMs.total} ms (match ${s.timingsMs.match} ms)`,
  ].join('\n');
}
