/**
 * Who may use the console: the operators file (YAML) holds each operator's scrypt password hash
 * and the sha256 of each API token — never a password or a token itself. The file is re-read when
 * it changes, so adding an operator needs no restart.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import { RostermatchError } from '../errors/index.ts';

const scrypt = (password: string, salt: Buffer, keylen: number, opts: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(password, salt, keylen, opts, (e, key) => (e ? reject(e) : resolve(key))));

/** OWASP's minimum for scrypt (N=2^17, r=8, p=1); ~0.3 s per login on this hardware, by design. */
const SCRYPT = { N: 2 ** 17, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
/** scrypt needs 128·N·r bytes; Node's default cap (32 MiB) is too low for N=2^17. */
const maxmem = (N: number, r: number) => 256 * N * r;

/** `scrypt$N$r$p$salt$hash` (base64): the parameters travel with the hash so they can be raised later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, KEY_BYTES, { ...SCRYPT, maxmem: maxmem(SCRYPT.N, SCRYPT.r) });
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const N = Number(n);
  const R = Number(r);
  const key = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, { N, r: R, p: Number(p), maxmem: maxmem(N, R) });
  return timingSafeEqual(key, expected);
}

export const sha256Hex = (s: string) => createHash('sha256').update(s).digest('hex');

/** A new API token: shown once, stored only as its sha256. */
export function newToken(): string {
  return `rmt_${randomBytes(24).toString('base64url')}`;
}

const NAME = z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'letters, digits and . _ @ - only, at most 64');
const OperatorsFile = z
  .object({
    operators: z.array(z.object({ name: NAME, password: z.string().startsWith('scrypt$', 'not a password hash written by `rostermatch operator add`') }).strict()).default([]),
    tokens: z.array(z.object({ name: NAME, sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict()).default([]),
  })
  .strict();
export type Operators = z.infer<typeof OperatorsFile>;

export function validOperatorName(name: string): string {
  const r = NAME.safeParse(name);
  if (!r.success) throw new RostermatchError('USAGE', `operator name: ${r.error.issues[0]!.message}`, { field: 'name' });
  return name;
}

/** @defaultValue <data dir>/operators.yaml, or $ROSTERMATCH_OPERATORS */
export function operatorsFile(dataDir: string): string {
  return path.resolve(process.env.ROSTERMATCH_OPERATORS ?? path.join(dataDir, 'operators.yaml'));
}

export async function readOperators(file: string): Promise<Operators> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { operators: [], tokens: [] };
    throw e;
  }
  const r = OperatorsFile.safeParse(parse(text) ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new RostermatchError('OPERATORS_INVALID', issue.message, { file, field: issue.path.join('.') });
  }
  return r.data;
}

/** Writes the whole file atomically, readable by its owner only. */
export async function writeOperators(file: string, ops: Operators): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, stringify(ops), { mode: 0o600 });
  await fs.rename(tmp, file);
}

/** The operators file as of its last change: re-read only when its mtime moves. */
export class OperatorDirectory {
  readonly file: string;
  private cached: { mtimeMs: number; ops: Operators } | undefined;

  constructor(file: string) {
    this.file = file;
  }

  async current(): Promise<Operators> {
    const mtimeMs = await fs.stat(this.file).then((s) => s.mtimeMs, () => -1);
    if (this.cached?.mtimeMs !== mtimeMs) this.cached = { mtimeMs, ops: await readOperators(this.file) };
    return this.cached.ops;
  }

  async configured(): Promise<boolean> {
    const ops = await this.current();
    return ops.operators.length + ops.tokens.length > 0;
  }

  /** The operator's name when the password is right. Unknown names cost as much as wrong passwords. */
  async login(name: string, password: string): Promise<string | undefined> {
    const op = (await this.current()).operators.find((o) => o.name === name);
    const ok = await verifyPassword(password, op?.password ?? DUMMY_HASH);
    return op && ok ? op.name : undefined;
  }

  /** The token's name (the API client it was issued to) when the token is known. */
  async byToken(token: string): Promise<string | undefined> {
    const digest = Buffer.from(sha256Hex(token), 'hex');
    const t = (await this.current()).tokens.find((t) => timingSafeEqual(Buffer.from(t.sha256, 'hex'), digest));
    return t && `token:${t.name}`;
  }
}

/** Verified against when the name is unknown, so timing does not tell which names exist. */
const DUMMY_HASH = `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(KEY_BYTES).toString('base64')}`;
