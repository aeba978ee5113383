/** Maps a partner's header row onto logical fields through the pipeline's aliases. */
import type { LogicalField } from '../model/index.ts';
import type { ColumnSpec, Pipeline } from '../pipeline/index.ts';
import { RostermatchError } from '../errors/index.ts';

/** Case, spacing and punctuation differ between exports of the same system: compare without them. */
export function headerKey(cell: string): string {
  return cell.normalize('NFKD').toLowerCase().replace(/[^a-z0-9]/g, '');
}

export type ColumnMap = Partial<Record<LogicalField, number>>;

/** Where each logical field is, and each of the pipeline's identifier columns (undefined: not in this file). */
export interface Columns {
  fields: ColumnMap;
  identifiers: (number | undefined)[];
}

/** `column 3 ("First Name")`: header cells are the partner's column titles, not personal data. */
export function describeColumn(header: readonly string[], col: number): string {
  return `column ${col + 1} ("${header[col] ?? ''}")`;
}

/**
 * Every field finds exactly one column, or the file is refused: two columns that could carry one
 * field (the same header twice, or two of its aliases) are ambiguous, and taking the first would
 * silently match on whichever the export happened to put first. A pipeline settles it with
 * `columns.<field>: { column: N }`.
 */
export function mapHeader(header: readonly string[], pipeline: Pipeline, file: string): Columns {
  const positions = new Map<string, number[]>();
  header.forEach((cell, i) => {
    const key = headerKey(cell);
    if (key === '') return;
    const list = positions.get(key);
    if (list) list.push(i);
    else positions.set(key, [i]);
  });
  const map: ColumnMap = {};
  const claimedBy = new Map<number, string>();
  /** The column `spec` names, or undefined when the file has none; `name` is how errors call it. */
  const locate = (name: string, spec: ColumnSpec, setting: string): number | undefined => {
    let col: number;
    if (!Array.isArray(spec)) {
      col = spec.column - 1;
      if (col >= header.length) {
        throw new RostermatchError('FILE_MISSING_COLUMN', `${setting} is column ${spec.column}, but the header has ${header.length} columns`, { file, line: 1, field: name });
      }
    } else {
      const found = [...new Set(spec.flatMap((a) => positions.get(headerKey(a)) ?? []))].sort((a, b) => a - b);
      if (found.length === 0) return undefined;
      if (found.length > 1) {
        const cols = found.map((i) => describeColumn(header, i));
        const list = cols.length === 2 ? `${cols[0]} and ${cols[1]}` : `${cols.slice(0, -1).join(', ')} and ${cols.at(-1)}`;
        throw new RostermatchError(
          'FILE_DUPLICATE_COLUMN',
          `${list} could each be "${name}"; remove one, or set ${setting}: { column: N } in the pipeline`,
          { file, line: 1, field: name },
        );
      }
      col = found[0]!;
    }
    const other = claimedBy.get(col);
    if (other) {
      throw new RostermatchError('FILE_DUPLICATE_COLUMN', `${describeColumn(header, col)} maps to both "${other}" and "${name}"`, { file, line: 1, field: name });
    }
    claimedBy.set(col, name);
    return col;
  };
  for (const [field, spec] of Object.entries(pipeline.columns) as [LogicalField, ColumnSpec][]) {
    const col = locate(field, spec, `columns.${field}`);
    if (col !== undefined) map[field] = col;
  }
  const identifiers = pipeline.identifiers.map((id, i) => locate(`identifier ${id.name ?? id.system}`, id.columns, `identifiers[${i}].columns`));
  if (header.length === 1) {
    // One header cell holding another separator: the file is delimited differently from what
    // the pipeline says (Excel's "Unicode text" export is tab-separated).
    const other = ['\t', ';', '|', ','].find((d) => d !== pipeline.file.delimiter && header[0]!.includes(d));
    if (other) {
      const name = other === '\t' ? 'tabs' : `"${other}"`;
      throw new RostermatchError(
        'FILE_MALFORMED_CSV',
        `the header is separated by ${name}, but the pipeline's file.delimiter is ${JSON.stringify(pipeline.file.delimiter)}${other === '\t' ? ' (Excel\'s "Unicode text" is tab-separated: file.delimiter: "\\t")' : ''}`,
        { file, line: 1 },
      );
    }
  }
  const required: LogicalField[] = map.fullName !== undefined ? ['recordId', 'birthDate', 'fullName'] : ['recordId', 'birthDate', 'given', 'family'];
  // A file without the action column its pipeline names would turn every removal into an addition.
  if (pipeline.columns.action !== undefined) required.push('action');
  for (const field of required) {
    if (map[field] === undefined) {
      const spec = pipeline.columns[field];
      const expected = Array.isArray(spec) ? spec.join('" or "') : '';
      throw new RostermatchError('FILE_MISSING_COLUMN', `no column for "${field}" (expected a header "${expected}")`, { file, line: 1, field });
    }
  }
  return { fields: map, identifiers };
}
