/**
 * `rostermatch operator …`: who may sign in to the console, and API tokens for scripts and
 * Prometheus. Passwords are read without echo (or from stdin for automation) and stored only as
 * scrypt hashes; a token is printed once and stored only as its sha256.
 */
import readline from 'node:readline';
import type { Command } from 'commander';
import { hashPassword, newToken, operatorsFile, readOperators, sha256Hex, validOperatorName, writeOperators } from '../console/operators.ts';
import { resolvePaths } from '../config/index.ts';
import { RostermatchError } from '../errors/index.ts';
import type { GlobalOptions } from './context.ts';

/** The first line of stdin (for `--password-stdin`), or a prompt that does not echo. */
async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin || !process.stdin.isTTY) {
    const rl = readline.createInterface({ input: process.stdin });
    for await (const line of rl) {
      rl.close();
      return line;
    }
    return '';
  }
  const ask = (q: string) =>
    new Promise<string>((resolve) => {
      const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
      const out = rl as unknown as { _writeToOutput: (s: string) => void };
      out._writeToOutput = (s: string) => {
        if (s.startsWith(q)) process.stderr.write(q);
      };
      rl.question(q, (a) => {
        rl.close();
        process.stderr.write('\n');
        resolve(a);
      });
    });
  const first = await ask('Password: ');
  if ((await ask('Again: ')) !== first) throw new RostermatchError('USAGE', 'the two passwords differ', { field: 'password' });
  return first;
}

/** Long enough to resist guessing at the login form's rate limit; no composition rules (NIST 800-63B). */
const MIN_PASSWORD = 12;

export function registerOperatorCommands(program: Command, globals: () => GlobalOptions): void {
  const op = program.command('operator').description('who may sign in to the console, and API tokens');
  const fileOf = (o: { file?: string }) => o.file ?? operatorsFile(resolvePaths(globals().dataDir).dataDir);
  const fileOption = ['--file <file>', 'the operators file (default: $ROSTERMATCH_OPERATORS or <data-dir>/operators.yaml)'] as const;

  op.command('add')
    .description('add an operator, or set a new password for one')
    .argument('<name>', 'the name they sign in with; it is recorded with their decisions')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .option(...fileOption)
    .action(async (name: string, o: { passwordStdin?: boolean; file?: string }) => {
      validOperatorName(name);
      const password = await readPassword(!!o.passwordStdin);
      if (password.length < MIN_PASSWORD) throw new RostermatchError('USAGE', `the password must have at least ${MIN_PASSWORD} characters`, { field: 'password' });
      const file = fileOf(o);
      const ops = await readOperators(file);
      const hash = await hashPassword(password);
      const existing = ops.operators.find((x) => x.name === name);
      if (existing) existing.password = hash;
      else ops.operators.push({ name, password: hash });
      await writeOperators(file, ops);
      console.log(`${existing ? 'changed the password of' : 'added'} operator ${name} in ${file}`);
    });

  op.command('remove')
    .description('remove an operator or a token; their open sessions end at their next request')
    .argument('<name>')
    .option(...fileOption)
    .action(async (name: string, o: { file?: string }) => {
      const file = fileOf(o);
      const ops = await readOperators(file);
      const before = ops.operators.length + ops.tokens.length;
      ops.operators = ops.operators.filter((x) => x.name !== name);
      ops.tokens = ops.tokens.filter((x) => x.name !== name);
      if (ops.operators.length + ops.tokens.length === before) throw new RostermatchError('USAGE', `no operator or token named ${name}`, { file, field: 'name' });
      await writeOperators(file, ops);
      console.log(`removed ${name} from ${file}`);
    });

  op.command('list')
    .description('operators and tokens (names only)')
    .option(...fileOption)
    .action(async (o: { file?: string }) => {
      const ops = await readOperators(fileOf(o));
      for (const x of ops.operators) console.log(`operator\t${x.name}`);
      for (const t of ops.tokens) console.log(`token\t${t.name}`);
      if (ops.operators.length + ops.tokens.length === 0) console.log('no operators');
    });

  op.command('token')
    .description('issue an API token (for scripts and Prometheus); it is printed once')
    .argument('<name>', 'what the token is for, e.g. prometheus')
    .option(...fileOption)
    .action(async (name: string, o: { file?: string }) => {
      validOperatorName(name);
      const file = fileOf(o);
      const ops = await readOperators(file);
      const token = newToken();
      ops.tokens = ops.tokens.filter((t) => t.name !== name).concat({ name, sha256: sha256Hex(token) });
      await writeOperators(file, ops);
      console.log(token);
      console.error(`token ${name} stored (as its sha256) in ${file}; send it as "Authorization: Bearer <token>"`);
    });
}
