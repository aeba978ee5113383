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
import { describeColumn, mapHeader, type Columns } from './header.ts';
import { normaliseRow } from './row.ts';
import { normaliseName } from '../normalise/index.ts';
import { messageRows, rowPipeline } from './hl7v2.ts';
import fs from 'node:fs/promises';

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
 * memory. The file is read twice: a first pass finds every file-level fault (encoding, quoting,
 * a NUL, a ragged row) and every record id used on more than one row before the first chunk is
 * yielded, so a bad file fails before anything is matched or stored, and each row that shares its
 * record id can say so — the first of them included. `label` names the file in errors (a partner
 * knows its file by its own name, not our spool path).
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
  if (pipeline.format === 'hl7v2') {
    yield* messageChunks(file, pipeline, today, label, size, o.onBytes);
    return;
  }
  const shared = await sharedRecordIds(rawRows(file, pipeline, label), (raw) => normaliseRow(raw, pipeline, today), label);
  let rows: NormalisedRow[] = [];
  let bytes = 0;
  for await (const r of rawRows(file, pipeline, label, o.onHeader)) {
    bytes = r.bytes;
    rows.push(withSharedId(normaliseRow(r.raw, pipeline, today), shared));
    if (rows.length === size) {
      o.onBytes?.(bytes);
      yield rows;
      rows = [];
    }
  }
  if (rows.length > 0) {
    o.onBytes?.(bytes);
    yield rows;
  }
}

/** Record ids on more than one row: their lines, and whether the rows name different people. */
type SharedIds = Map<string, { lines: number[]; differ: boolean }>;

/**
 * A record id names one person in the partner's system. Rows that repeat it for the same person
 * (same name and birth date) are matched as usual — the Group holds that patient once — and say
 * where the others are; rows that give it to different people are all invalid, since which of
 * them the id means cannot be told, and a review decision kept for the id would follow the wrong one.
 */
async function sharedRecordIds(source: AsyncIterable<{ raw: RawRow }> | Iterable<{ raw: RawRow }>, normalise: (raw: RawRow) => NormalisedRow, label: string): Promise<SharedIds> {
  const first = new Map<string, { line: number; who: number }>();
  const shared: SharedIds = new Map();
  let count = 0;
  for await (const { raw } of source) {
    count++;
    if (raw.recordId === '') continue;
    const who = hash32(identityOf(raw, normalise(raw)));
    const seen = first.get(raw.recordId);
    if (!seen) {
      first.set(raw.recordId, { line: raw.line, who });
      continue;
    }
    const s = shared.get(raw.recordId);
    if (s) {
      s.lines.push(raw.line);
      s.differ ||= who !== seen.who;
    } else shared.set(raw.recordId, { lines: [seen.line, raw.line], differ: who !== seen.who });
  }
  if (count === 0) throw new RostermatchError('FILE_NO_ROWS', 'only a header, no rows', { file: label, line: 2 });
  return shared;
}

/**
 * An HL7 v2 file's rows (issue 13), one a message: refused messages are invalid rows that carry
 * their refusal; the others are normalised as roster rows are, and a record id (PID-3's MR)
 * that names different people in one file makes all their rows invalid, as in a roster.
 */
async function* messageChunks(file: string, pipeline: Pipeline, today: string, label: string, size: number, onBytes?: (bytes: number) => void): AsyncGenerator<NormalisedRow[]> {
  const messages = await messageRows(file, pipeline, label);
  const normalise = (raw: RawRow) => normaliseRow(raw, rowPipeline(pipeline, raw), today);
  const taken = messages.filter((m) => !m.problems);
  // Every message refused is still a file of rows, each answered; only a roster can be "no rows".
  const shared: SharedIds = taken.length > 0 ? await sharedRecordIds(taken, normalise, label) : new Map();
  const bytes = (await fs.stat(file)).size;
  for (let i = 0; i < messages.length; i += size) {
    const chunk = messages.slice(i, i + size).map((m): NormalisedRow => {
      if (m.problems) return { kind: 'invalid', line: m.raw.line, index: m.raw.index, recordId: m.raw.recordId, problems: m.problems, message: m.message };
      return { ...withSharedId(normalise(m.raw), shared), message: m.message };
    });
    // Bytes are not counted message by message: progress moves by the share of messages through.
    onBytes?.(Math.round(((i + chunk.length) / messages.length) * bytes));
    yield chunk;
  }
}

function identityOf(raw: RawRow, row: NormalisedRow): string {
  if (row.kind === 'valid') return `${row.person.given}|${row.person.family}|${row.person.suffix}|${row.person.birthDate}`;
  const f = raw.fields;
  return `~${normaliseName(f.given ?? f.fullName ?? '')}|${normaliseName(f.family ?? '')}|${(f.birthDate ?? '').trim()}`;
}

/** FNV-1a: a number per identity keeps the first pass's memory to two numbers per record id. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

function lineList(lines: number[]): string {
  const shown = lines.slice(0, 5).join(', ');
  return lines.length > 5 ? `${shown} and ${lines.length - 5} more` : shown;
}

function withSharedId(row: NormalisedRow, shared: SharedIds): NormalisedRow {
  const s = shared.get(row.recordId);
  if (!s) return row;
  const others = lineList(s.lines.filter((l) => l !== row.line));
  if (s.differ) {
    const p = { field: 'recordId' as const, code: 'duplicate_conflict', message: `record id is also on line ${others} for a different person (name or birth date differ); none of these rows is matched: give each person their own id` };
    return { kind: 'invalid', line: row.line, index: row.index, recordId: row.recordId, problems: row.kind === 'invalid' ? [...row.problems, p] : [p] };
  }
  const note = { field: 'recordId' as const, code: 'duplicate', message: `record id is also on line ${others}, for the same name and birth date` };
  return row.kind === 'invalid' ? { ...row, problems: [...row.problems, note] } : { ...row, warnings: [...row.warnings, note] };
}

interface RawRecord {
  raw: RawRow;
  /** Bytes of text read up to the end of this row. */
  bytes: number;
}

/**
 * Rows as the file has them, each with the physical line it starts on — counted from the line
 * breaks of the rows before it (a quoted cell's CR LF is one line break, as an editor shows it;
 * csv-parse's own counter takes it for two). Blank lines are counted and skipped; every fault
 * names the line and, where there is one, the column.
 */
async function* rawRows(file: string, pipeline: Pipeline, label: string, onHeader?: (header: string[]) => void): AsyncGenerator<RawRecord> {
  // State is kept as csv-parse reads, in on_record, not as we consume: a fault destroys the
  // stream before the rows parsed ahead of it are delivered, and must still name its own line.
  const s: ParseState = { header: undefined, columns: { fields: {}, identifiers: [] }, fieldOf: new Map(), start: 1, drift: 0 };
  const onRecord = ({ record, info }: CsvRecord): LocatedRecord | null => {
    const line = s.start;
    const inside = record.reduce((n, c) => n + lineBreaks(c), 0);
    s.start = line + inside + 1;
    s.drift = info.lines - (line + inside);
    if (record.every((c) => c.trim() === '')) return null;
    refuseNul(record, line, s, label);
    if (!s.header) {
      s.columns = mapHeader(record, pipeline, label);
      s.header = record;
      s.fieldOf = new Map((Object.entries(s.columns.fields) as [LogicalField, number][]).map(([f, c]) => [c, f]));
      for (const c of s.columns.identifiers) if (c !== undefined) s.fieldOf.set(c, 'identifier');
      return { record, line, bytes: info.bytes, header: true };
    }
    if (record.length !== s.header.length) {
      throw new RostermatchError('FILE_MALFORMED_CSV', 'a row has a different number of cells from the header', { file: label, line });
    }
    return { record, line, bytes: info.bytes, header: false };
  };
  const parser = chain(
    openText(file, pipeline.file.encoding, label),
    parse({ delimiter: pipeline.file.delimiter, info: true, skip_empty_lines: false, relax_column_count: true, bom: true, relax_quotes: false, on_record: onRecord as never }),
  );
  let count = 0;
  try {
    for await (const { record, line, bytes, header } of parser as AsyncIterable<LocatedRecord>) {
      if (header) {
        onHeader?.(record);
        continue;
      }
      const raw: RawRow = { line, index: count++, recordId: '', fields: {} };
      for (const [field, col] of Object.entries(s.columns.fields) as [LogicalField, number][]) raw.fields[field] = record[col] ?? '';
      if (s.columns.identifiers.length > 0) raw.identifierCells = s.columns.identifiers.map((c) => (c === undefined ? undefined : (record[c] ?? '')));
      raw.recordId = (raw.fields.recordId ?? '').trim();
      yield { raw, bytes };
    }
  } catch (e) {
    throw asFileError(e, label, s);
  }
  if (!s.header) throw new RostermatchError('FILE_EMPTY', 'the file is empty', { file: label });
}

interface LocatedRecord {
  record: string[];
  /** The physical line the record starts on. */
  line: number;
  bytes: number;
  header: boolean;
}

/** CR LF, LF and a lone CR are each one line break. */
function lineBreaks(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x0a || (c === 0x0d && s.charCodeAt(i + 1) !== 0x0a)) n++;
  }
  return n;
}

/**
 * A NUL is never part of a name: it comes from a UTF-16 file read as bytes, or a damaged
 * export, and folding would quietly turn it into a space inside a name. Refuse the file.
 */
function refuseNul(record: string[], line: number, s: ParseState, file: string): void {
  let at = line;
  for (let col = 0; col < record.length; col++) {
    const cell = record[col]!;
    const nul = cell.indexOf('\0');
    if (nul >= 0) {
      const where = s.header ? describeColumn(s.header, col) : `column ${col + 1} of the header`;
      const field = s.fieldOf.get(col);
      throw new RostermatchError(
        'FILE_CONTROL_CHARACTER',
        `a NUL byte in ${where}; the file is damaged, or UTF-16 read as another encoding`,
        { file, line: at + lineBreaks(cell.slice(0, nul)), ...(field ? { field } : {}) },
      );
    }
    at += lineBreaks(cell);
  }
}

interface ParseState {
  header: string[] | undefined;
  columns: Columns;
  fieldOf: Map<number, LogicalField>;
  /** The physical line the record being read starts on. */
  start: number;
  drift: number;
}

/** Each csv-parse fault in words a partner can act on, with the line and column it is at. */
const CSV_FAULTS: Record<string, string> = {
  INVALID_OPENING_QUOTE: 'a quote (") inside a cell that does not start with one; quote the whole cell and double the quote inside it ("")',
  CSV_INVALID_OPENING_QUOTE: 'a quote (") inside a cell that does not start with one; quote the whole cell and double the quote inside it ("")',
  CSV_INVALID_CLOSING_QUOTE: 'text after the closing quote of a quoted cell; a quote inside a quoted cell must be doubled ("")',
  CSV_NON_TRIMABLE_CHAR_AFTER_CLOSING_QUOTE: 'text after the closing quote of a quoted cell; a quote inside a quoted cell must be doubled ("")',
  CSV_QUOTE_NOT_CLOSED: 'a quoted cell is never closed: the file ends inside it',
  CSV_MAX_RECORD_SIZE: 'a row is too long',
  CSV_RECORD_INCONSISTENT_FIELDS_LENGTH: 'a row has a different number of cells from the header',
  CSV_RECORD_INCONSISTENT_COLUMNS: 'a row has a different number of cells from the header',
};

function asFileError(e: unknown, file: string, s: ParseState): Error {
  if (isRostermatchError(e)) return e;
  const err = e as { code?: string; lines?: number; column?: number | string | null; message?: string };
  if (typeof err.code === 'string' && (err.code.startsWith('CSV_') || err.code in CSV_FAULTS)) {
    // Messages are our own: csv-parse's end by quoting the offending cell, perhaps a name.
    const fault = CSV_FAULTS[err.code] ?? `the file is not well-formed delimited text (${err.code})`;
    const col = typeof err.column === 'number' ? err.column : undefined;
    const where = col === undefined ? '' : s.header ? `, in ${describeColumn(s.header, col)}` : `, in column ${col + 1} of the header`;
    const field = col === undefined ? undefined : s.fieldOf.get(col);
    // An unclosed quote is found at the end of the file; where it opened is what helps.
    const line = err.code === 'CSV_QUOTE_NOT_CLOSED' || !err.lines ? s.start : Math.max(s.start, err.lines - s.drift);
    return new RostermatchError('FILE_MALFORMED_CSV', fault + where, { file, line, ...(field ? { field } : {}) }, { cause: e });
  }
  return new RostermatchError('FILE_UNREADABLE', 'cannot read the file', { file }, { cause: e });
}
