/** Command-line options for a benchmark, as every bench:* script reads them. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * The options, or an exit: `--help` prints `usage` (exit 0); an unknown or malformed option
 * prints the reason and `usage` (exit 2), instead of node's stack trace.
 */
export function benchArgs<const O extends Options>(options: O, usage: string): ReturnType<typeof parseArgs<{ options: O & { help: { type: 'boolean'; short: 'h' } } }>>['values'] {
  let values: { help?: boolean };
  try {
    ({ values } = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h' } } }) as { values: { help?: boolean } });
  } catch (e) {
    console.error(`${(e as Error).message}\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  return values as never;
}
