/**
 * Parse + normalise: a partner file in, its rows normalised in file order out. File-level faults
 * (wrong encoding, broken quoting, a missing required column, a ragged row) reject the whole file
 * with the file, line and field; row-level faults make that row `invalid` and nothing else.
 */
import { parse } from 'csv-parse';
import type { LogicalField, NormalisedRow, RawRow } from '../model/index.ts';
import type { Pipeline } from '../pipeline/index.ts';
import { isRostermatchError, RostermatchError } from '../errors/index.ts';
import { chain, openText } from '../intake/index.ts';
import { mapHeader, type ColumnMap } from './header.ts';
import { normaliseRow } from './row.ts';

export { headerKey, mapHeader } from './header.ts';
export { normaliseRow } from './row.ts';

export interface ParsedFile {
  header: string[];
  rows: NormalisedRow[];
}

interface CsvRecord {
  record: string[];
  info: { lines: number; bytes: number };
}

/** The whole file's rows at once: for small files and tests; large files go through rosterChunks. */
export async function readRoster(file: string, pipeline: Pipeline, today: string, label = file): Promise<ParsedFile> {
  const rows: NormalisedRow[] = [];
  const header: string[] = [];
  for await (const chunk of rosterChunks(file, pipeline, today, { label, onHeader: (h) => header.push(...h) })) rows.push(...chunk);
  return { header, rows };
}

/**
 * The file's rows, normalised, `size` at a time, so a million-row file is matched in constant
 * memory. A file-level fault throws when it is reached — callers record nothing against the
 * Group until the last chunk is through. `label` names the file in errors (a partner knows its
 * file by its own name, not our spool path).
 */
export async function* rosterChunks(
  file: string,
  pipeline: Pipeline,
  today: string,
  o: {
    label?: string;
    size?: number;
    onHeader?: (header: string[]) => void;
    /** Before each chunk: how far into the file its last row ends, in bytes of UTF-8 text (for progress). */
    onBytes?: (bytes: number) => void;
  } = {},
): AsyncGenerator<NormalisedRow[]> {
  const label = o.label ?? file;
  const size = o.size ?? 1000;
  const parser = chain(
    openText(file, pipeline.file.encoding, label),
    parse({ delimiter: pipeline.file.delimiter, info: true, skip_empty_lines: true, bom: true, relax_quotes: false }),
  );
  let header: string[] | undefined;
  let columns: ColumnMap = {};
  let rows: NormalisedRow[] = [];
  let count = 0;
  let bytes = 0;
  const seenIds = new Map<string, number>();
  try {
    for await (const { record, info } of parser as AsyncIterable<CsvRecord>) {
      // A quoted cell may span lines: report the line the row starts on.
      const line = info.lines - record.reduce((n, c) => n + countNewlines(c), 0);
      bytes = info.bytes;
      if (!header) {
        header = record;
        columns = mapHeader(header, pipeline, label);
        o.onHeader?.(header);
        continue;
      }
      if (record.every((c) => c.trim() === '')) continue;
      const raw: RawRow = { line, index: count++, recordId: '', fields: {} };
      for (const [field, col] of Object.entries(columns) as [LogicalField, number][]) raw.fields[field] = record[col] ?? '';
      raw.recordId = (raw.fields.recordId ?? '').trim();
      let row = normaliseRow(raw, pipeline, today);
      const firstLine = raw.recordId === '' ? undefined : seenIds.get(raw.recordId);
      if (firstLine !== undefined) {
        const dup = { field: 'recordId' as const, code: 'duplicate', message: `record id already used on line ${firstLine}` };
        row = { kind: 'invalid', line, index: raw.index, recordId: raw.recordId, problems: row.kind === 'invalid' ? [...row.problems, dup] : [dup] };
      } else if (raw.recordId !== '') seenIds.set(raw.recordId, line);
      rows.push(row);
      if (rows.length === size) {
        o.onBytes?.(bytes);
        yield rows;
        rows = [];
      }
    }
  } catch (e) {
    throw asFileError(e, label);
  }
  if (!header) throw new RostermatchError('FILE_EMPTY', 'the file is empty', { file: label });
  if (count === 0) throw new RostermatchError('FILE_NO_ROWS', 'only a header, no rows', { file: label, line: 2 });
  if (rows.length > 0) {
    o.onBytes?.(bytes);
    yield rows;
  }
}

function countNewlines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

function asFileError(e: unknown, file: string): Error {
  if (isRostermatchError(e)) return e;
  const err = e as { code?: string; lines?: number; message?: string };
  if (typeof err.code === 'string' && err.code.startsWith('CSV_')) {
    // Some csv-parse messages end by quoting the offending cell: a name, perhaps. Cut that off.
    const detail =
      err.code === 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH'
        ? 'a row has a different number of cells from the header'
        : (err.message ?? err.code).replace(/,?\s*value is[\s\S]*$/, '');
    return new RostermatchError('FILE_MALFORMED_CSV', detail, { file, ...(err.lines ? { line: err.lines } : {}) }, { cause: e });
  }
  return new RostermatchError('FILE_UNREADABLE', 'cannot read the file', { file }, { cause: e });
}
