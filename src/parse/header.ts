/** Maps a partner's header row onto logical fields through the pipeline's aliases. */
import type { LogicalField } from '../model/index.ts';
import type { Pipeline } from '../pipeline/index.ts';
import { RostermatchError } from '../errors/index.ts';

/** Case, spacing and punctuation differ between exports of the same system: compare without them. */
export function headerKey(cell: string): string {
  return cell.normalize('NFKD').toLowerCase().replace(/[^a-z0-9]/g, '');
}

export type ColumnMap = Partial<Record<LogicalField, number>>;

export function mapHeader(header: readonly string[], pipeline: Pipeline, file: string): ColumnMap {
  const positions = new Map<string, number>();
  header.forEach((cell, i) => {
    const key = headerKey(cell);
    if (key !== '' && !positions.has(key)) positions.set(key, i);
  });
  const map: ColumnMap = {};
  const claimedBy = new Map<number, LogicalField>();
  for (const [field, aliases] of Object.entries(pipeline.columns) as [LogicalField, string[]][]) {
    const found = aliases.map((a) => positions.get(headerKey(a))).filter((i): i is number => i !== undefined);
    if (found.length === 0) continue;
    if (new Set(found).size > 1) {
      throw new RostermatchError('FILE_DUPLICATE_COLUMN', `more than one column is a header alias of "${field}"`, { file, line: 1, field });
    }
    const col = found[0]!;
    const other = claimedBy.get(col);
    if (other) {
      throw new RostermatchError('FILE_DUPLICATE_COLUMN', `column "${header[col]}" maps to both "${other}" and "${field}"`, { file, line: 1, field });
    }
    claimedBy.set(col, field);
    map[field] = col;
  }
  const required: LogicalField[] = map.fullName !== undefined ? ['recordId', 'birthDate', 'fullName'] : ['recordId', 'birthDate', 'given', 'family'];
  for (const field of required) {
    if (map[field] === undefined) {
      const expected = (pipeline.columns[field] ?? []).join('" or "');
      throw new RostermatchError('FILE_MISSING_COLUMN', `no column for "${field}" (expected a header "${expected}")`, { file, line: 1, field });
    }
  }
  return map;
}
