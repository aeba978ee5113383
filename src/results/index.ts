/**
 * The partner-facing outputs of a run: `<name>.results.csv` (one row per input row, input order)
 * and `<name>.summary.json`. Both are written under a temporary name and renamed, so a partner
 * never picks up half a file.
 */
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { format } from 'fast-csv';
import type { RowResult, ScoredCandidate } from '../model/index.ts';

export const RESULT_HEADERS = ['line', 'record_id', 'outcome', 'patient_id', 'score', 'reasons', 'candidates'] as const;
/**
 * After RESULT_HEADERS in the result file of a file that can remove (issue 12): the row's action
 * as read (`add`, `remove`; blank when the cell said neither) and what the row did to the Group.
 */
export const ACTION_HEADERS = ['action', 'group_change'] as const;

export function outputNames(inputFile: string): { base: string; results: string; summary: string } {
  const base = path.basename(inputFile).replace(/\.[^.]*$/, '') || path.basename(inputFile);
  return { base, results: `${base}.results.csv`, summary: `${base}.summary.json` };
}

/**
 * Spreadsheets run a cell that starts with = + - @ (or a tab/CR before one) as a formula; a
 * partner opening the result file must never execute one that arrived inside their own data.
 */
export function neutraliseCell(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

export function explain(c: ScoredCandidate): string {
  return c.comparisons.map((x) => `${x.field}:${x.level}${x.weight >= 0 ? '+' : ''}${x.weight}`).join(' ');
}

export function resultCells(r: RowResult): string[] {
  const best = r.candidates[0];
  let reasons = '';
  if (r.outcome === 'invalid') reasons = (r.problems ?? []).map((p) => `${p.field}: ${p.message}`).join('; ');
  else if (best) reasons = (r.reviewed ? `reviewed: accepted by ${r.reviewed.by} on ${r.reviewed.at.slice(0, 10)}; ` : '') + explain(best) + (best.guard ? ` guard:${best.guard}` : '');
  else if (r.outcome === 'no_match') reasons = r.score === undefined ? 'no candidate shares a blocking key' : 'no candidate reached the possible threshold';
  // Fields left out of matching, and a record id shared with other rows, are the partner's to know.
  const warnings = (r.warnings ?? []).map((w) => `${w.field}: ${w.message}`);
  if (warnings.length > 0) reasons = [reasons, ...warnings].filter((x) => x !== '').join('; ');
  const candidates =
    r.outcome === 'possible' || r.outcome === 'ambiguous' ? r.candidates.map((c) => `${c.patientId} (${c.score})`).join('; ') : '';
  return [
    String(r.line),
    neutraliseCell(r.recordId),
    r.outcome,
    r.patientId ?? '',
    r.score === undefined ? '' : String(r.score),
    neutraliseCell(reasons),
    neutraliseCell(candidates),
  ];
}

/**
 * Writes the result rows in input order, from rows or pages of rows. Returns the final path. With
 * `groupChange`, each row also says its action and what it did to the Group (ACTION_HEADERS).
 */
export async function writeResultFile(
  dir: string,
  name: string,
  results: Iterable<RowResult> | AsyncIterable<RowResult[]>,
  o: { groupChange?: (r: RowResult) => string } = {},
): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const final = path.join(dir, name);
  const tmp = `${final}.tmp-${process.pid}`;
  const out = createWriteStream(tmp);
  const headers: string[] = o.groupChange ? [...RESULT_HEADERS, ...ACTION_HEADERS] : [...RESULT_HEADERS];
  const cells = o.groupChange ? (r: RowResult) => [...resultCells(r), r.action ?? '', o.groupChange!(r)] : resultCells;
  const csv = format<string[], string[]>({ headers, writeHeaders: true, rowDelimiter: '\r\n', quoteColumns: false });
  csv.pipe(out);
  const pages: AsyncIterable<readonly RowResult[]> | Iterable<readonly RowResult[]> = Symbol.asyncIterator in results ? results : [[...results]];
  for await (const page of pages) {
    for (const r of page) {
      if (!csv.write(cells(r))) await new Promise((res) => csv.once('drain', res));
    }
  }
  csv.end();
  await finished(out);
  await fs.rename(tmp, final);
  return final;
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await fs.rename(tmp, file);
}
