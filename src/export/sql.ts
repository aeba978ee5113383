/** Values written into the export's SQL as literals: copyOut (COPY … TO STDOUT) takes no parameters. */
import { sqlLiteral as literal } from '../store/index.ts';

export { literal };

export function textArray(values: readonly string[]): string {
  return `ARRAY[${values.map(literal).join(', ') || "''"}]::text[]`;
}
