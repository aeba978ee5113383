/**
 * The FHIR path of an export, as a partner meets it: `rostermatch serve` in a process of its own
 * (its peak RSS is then the server's alone, read from /proc/<pid>/status), a SMART Backend
 * Services client registered in its store, a token, a Group `$export` kick-off over HTTP, and
 * polling until the manifest. Used by bench:export and by test/fhir-export-rss.test.ts.
 *
 * The client here is the few requests the bench needs (a jose-signed assertion and fetch), not
 * the independent conformance client of test/bulk-client: the bench only times the happy path.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { addClient, type Db } from '../src/store/index.ts';
import { REDIS_URL } from './server.ts';


/** A process's memory from /proc/<pid>/status, in MB: now (VmRSS) and its peak so far (VmHWM). */
export async function procMemory(pid: number): Promise<{ rssMb: number; hwmMb: number }> {
  const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: Math.round(kb('VmRSS') / 1024), hwmMb: Math.round(kb('VmHWM') / 1024) };
}

/** Reads a process's VmRSS every `everyMs` until stopped; resolves with the highest seen. */
export function sampleRss(pid: number, everyMs = 100): { stop(): Promise<number> } {
  let max = 0;
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      try {
        max = Math.max(max, (await procMemory(pid)).rssMb);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await done;
      return max;
    },
  };
}

export interface ServeChild {
  child: ChildProcess;
  pid: number;
  /** The FHIR base serve printed at start-up (it listens on a free port). */
  fhirBase: string;
  /** The folder its export jobs write into: <data dir>/bulk/<job id>/. */
  bulkRoot: string;
  /** What it printed (stdout and stderr), for a failure's message. */
  output(): string;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface ServeChildOptions {
  /** The global --data-dir: the embedded store (without databaseUrl) and the export jobs' files. */
  dataDir: string;
  databaseUrl?: string;
  redisUrl?: string;
  /** ROSTERMATCH_QUEUE_PREFIX: a prefix of its own, its keys deleted by dropQueueKeys afterwards. */
  queuePrefix: string;
  /** Wait this long for serve to say it is serving. @defaultValue 120000 */
  startMs?: number;
  /** More arguments to `serve`. */
  args?: string[];
}

/**
 * `node src/cli/main.ts --data-dir D --pipelines P serve --port 0 --concurrency 0`, as an operator
 * starts it, with no pipelines and matching left to workers (so no candidate index is loaded: the
 * process's memory is the FHIR surface's and the exports'). Resolves once it prints its FHIR base.
 */
export async function spawnServe(o: ServeChildOptions): Promise<ServeChild> {
  const drop = path.join(o.dataDir, 'serve-drop');
  const pipelines = path.join(o.dataDir, 'serve-pipelines');
  await fs.mkdir(drop, { recursive: true });
  await fs.mkdir(pipelines, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, REDIS_URL: o.redisUrl ?? REDIS_URL, ROSTERMATCH_QUEUE_PREFIX: o.queuePrefix, LOG_LEVEL: 'warn' };
  if (o.databaseUrl) env.DATABASE_URL = o.databaseUrl;
  else delete env.DATABASE_URL;
  const args = [path.resolve('src/cli/main.ts'), '--data-dir', o.dataDir, '--pipelines', pipelines, 'serve', '--drop-root', drop, '--port', '0', '--concurrency', '0', ...(o.args ?? [])];
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (line: string) => {
    out += `${line}\n`;
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  readline.createInterface({ input: child.stdout! }).on('line', keep);
  readline.createInterface({ input: child.stderr! }).on('line', keep);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const stop = async (graceMs = 30_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(kill);
  };
  const until = Date.now() + (o.startMs ?? 120_000);
  for (;;) {
    const base = /FHIR base (\S+)/.exec(out)?.[1];
    if (base) return { child, pid: child.pid!, fhirBase: base, bulkRoot: path.join(o.dataDir, 'bulk'), output: () => out, stop };
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > until) {
      await stop(1000);
      throw new Error(`serve did not start (${child.exitCode !== null ? `exit ${child.exitCode}` : child.signalCode ?? 'timed out'}):\n${out.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A queue prefix no one else uses. */
export const ownQueuePrefix = (what: string) => `rm${what}-${randomBytes(4).toString('hex')}`;

/** A SMART Backend Services client of one partner: its id and the private half of its ES384 key. */
export interface BenchClient {
  clientId: string;
  kid: string;
  privateKey: CryptoKey;
  scope: string;
}

/** Registers a new client of `partner` (system/*.read) in the store, as `rostermatch client add` does. */
export async function registerClient(db: Db, partner: string, clientId = `bench-${randomBytes(4).toString('hex')}`): Promise<BenchClient> {
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  const { kty, crv, x, y } = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint({ kty: kty!, crv: crv!, x: x!, y: y! }, 'sha256');
  const scope = 'system/*.read';
  await addClient(db, { id: clientId, partner, jwks: { keys: [{ kty, crv, x, y, kid, alg: 'ES384', use: 'sig' }] } as never, scopes: scope, by: 'bench' });
  return { clientId, kid, privateKey, scope };
}

/** An access token: client_credentials with a jose-signed client assertion (SMART Backend Services). */
export async function accessToken(fhirBase: string, c: BenchClient): Promise<string> {
  const tokenUrl = `${fhirBase}/auth/token`;
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES384', kid: c.kid, typ: 'JWT' })
    .setIssuer(c.clientId)
    .setSubject(c.clientId)
    .setAudience(tokenUrl)
    .setJti(randomUUID())
    .setExpirationTime('4m')
    .sign(c.privateKey);
  const res = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: c.scope, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (res.status !== 200 || !body.access_token) throw new Error(`token refused: HTTP ${res.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

export interface BulkManifest {
  transactionTime: string;
  output: { type: string; url: string; count: number }[];
  error: { type: string; url: string; count?: number }[];
}

export interface TimedExport {
  /** From sending the kick-off to reading the manifest, as the client sees it. */
  seconds: number;
  jobId: string;
  manifest: BulkManifest;
  polls: number;
}

/**
 * GET [base]/Group/<id>/$export (Prefer: respond-async), then the status URL until the manifest.
 * Polls every `pollMs` (the server answers 429 under half its Retry-After, 2 s, so 1 s is the
 * closest a client may time it); a token is fetched again when it is near its 5 minutes.
 */
export async function timedGroupExport(o: { fhirBase: string; client: BenchClient; groupId: string; params?: string; pollMs?: number; maxWaitMs?: number }): Promise<TimedExport> {
  const pollMs = o.pollMs ?? 1000;
  let token = await accessToken(o.fhirBase, o.client);
  let tokenAt = Date.now();
  const t0 = performance.now();
  const kick = await fetch(`${o.fhirBase}/Group/${encodeURIComponent(o.groupId)}/$export${o.params ? `?${o.params}` : ''}`, {
    headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json', prefer: 'respond-async' },
  });
  const statusUrl = kick.headers.get('content-location');
  if (kick.status !== 202 || !statusUrl) throw new Error(`kick-off answered HTTP ${kick.status}: ${await kick.text()}`);
  await kick.body?.cancel();
  const until = Date.now() + (o.maxWaitMs ?? 3_600_000);
  for (let polls = 1; ; polls++) {
    await new Promise((r) => setTimeout(r, pollMs));
    if (Date.now() - tokenAt > 200_000) {
      token = await accessToken(o.fhirBase, o.client);
      tokenAt = Date.now();
    }
    const res = await fetch(statusUrl, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
    if (res.status === 200) {
      const manifest = (await res.json()) as BulkManifest;
      return { seconds: (performance.now() - t0) / 1000, jobId: statusUrl.split('/').pop()!, manifest, polls };
    }
    const text = await res.text();
    if (res.status !== 202 && res.status !== 429) throw new Error(`status request answered HTTP ${res.status}: ${text}`);
    if (Date.now() > until) throw new Error(`no manifest after ${o.maxWaitMs} ms`);
  }
}

/** Bytes of a job's NDJSON files, by file name. */
export async function jobFiles(bulkRoot: string, jobId: string): Promise<Record<string, number>> {
  const dir = path.join(bulkRoot, jobId);
  const out: Record<string, number> = {};
  for (const f of await fs.readdir(dir)) if (f.endsWith('.ndjson')) out[f] = (await fs.stat(path.join(dir, f))).size;
  return out;
}
