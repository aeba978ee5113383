/** Plain-text renderings for the terminal. Ids and counts only: nothing here prints PHI. */
import type { LoadReport } from '../patient-index/index.ts';
import { describeHold, ROW_GROUP_CHANGES, type RunOutput } from '../run/index.ts';
import { OUTCOMES } from '../model/index.ts';

export function printLoad(r: LoadReport): string {
  const lines = [
    `${r.file}: ${r.lines} lines; patients ${r.patients.inserted} new, ${r.patients.updated} updated, ${r.patients.unchanged} unchanged; ` +
      `immunizations ${r.immunizations.inserted} new, ${r.immunizations.updated} updated, ${r.immunizations.unchanged} unchanged; ` +
      // A delta's identity changes (shown when there are any, so a plain load prints as it did).
      (r.merged + r.unmerged + r.removed > 0 ? `${r.merged} merged, ${r.unmerged} unmerged, ${r.removed} removed; ` : '') +
      `${r.rejected} rejected`,
  ];
  for (const x of r.rejections.slice(0, 20)) lines.push(`  rejected ${x.file}:${x.line}: ${x.reason}`);
  if (r.rejected > 20) lines.push(`  … and ${r.rejected - 20} more rejected lines`);
  return lines.join('\n');
}

/**
 * The one stderr line of a load that rejected lines (undefined when none was): the command then
 * exits 1, so a script that loads nightly extracts notices, though the good lines did load.
 */
export function printLoadRejections(reports: readonly LoadReport[]): string | undefined {
  const bad = reports.filter((r) => r.rejected > 0);
  if (bad.length === 0) return undefined;
  const total = bad.reduce((n, r) => n + r.rejected, 0);
  const where = bad.map((r) => `${r.file}: ${r.rejected}`).join(', ');
  return `rostermatch: INDEX_LINE_INVALID: ${total} ${total === 1 ? 'line' : 'lines'} rejected, the other lines loaded (${where})`;
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
    ...(s.group.rows && s.group.actions
      ? [
          `  rows asking: add ${s.group.actions.add}, remove ${s.group.actions.remove}; what they did: ${
            ROW_GROUP_CHANGES.filter((c) => s.group.rows![c] > 0)
              .map((c) => `${c.replace('_', ' ')} ${s.group.rows![c]}`)
              .join(', ') || 'nothing'
          }`,
        ]
      : []),
    `  results: ${out.resultPath}`,
    `  summary: ${out.summaryPath}`,
    `  export:  ${out.kind === 'held' ? 'none (the Group did not change)' : (out.export?.dir ?? 'none (an HL7 v2 run: the partner exports through FHIR)')}`,
    `  time:    ${s.timingsMs.total} ms (match ${s.timingsMs.match} ms)`,
  ].join('\n');
}
