/** How every bench:* reports: the machine its figures come from, and its figures as two columns. */
import os from 'node:os';

/** When and where the figures were measured: the head of every bench's --json. */
export function measuredOn(): { date: string; node: string; cpus: number } {
  return { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length };
}

/** Labels left, values after them, one figure a line. */
export function printTable(rows: readonly (readonly [string, string | number])[]): void {
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  for (const [k, v] of rows) console.log(`${k.padEnd(width)} ${v}`);
}

/** A table of several columns (a header, then one row per measurement), each column as wide as its widest cell. */
export function printColumns(header: readonly string[], rows: readonly (readonly (string | number)[])[]): void {
  const cells = [header, ...rows].map((r) => r.map(String));
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  for (const r of cells) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd());
}
