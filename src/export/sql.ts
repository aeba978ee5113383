/** Values written into the export's SQL as literals: copyOut (COPY … TO STDOUT) takes no parameters. */

/** A value as an SQL literal; E'' reads the same whatever standard_conforming_strings says. */
export function literal(value: string): string {
  return `E'${value.replace(/[\\']/g, (c) => c + c)}'`;
}

export function textArray(values: readonly string[]): string {
  return `ARRAY[${values.map(literal).join(', ') || "''"}]::text[]`;
}
