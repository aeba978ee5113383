/** Fixtures for the daemon's tests: a drop root, a pipelines folder, real Redis, real processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterEach } from 'vitest';
import { stringify } from 'yaml';
import type { Db } from '../src/store/index.ts';
import { testPipeline } from './helpers.ts';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (stops.length > 0) await stops.pop()!().catch(() => {});
});
export function onCleanup(fn: () => Promise<void>): void {
  stops.push(fn);
}

/** A queue prefix no other test shares; its keys are deleted afterwards. */
export function testPrefix(redisUrl = REDIS_URL): string {
  const prefix = `rmtest-${randomBytes(4).toString('hex')}`;
  onCleanup(async () => {
    // The test may have stopped this Redis: fail fast instead of queueing commands for ever.
    const r = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    r.on('error', () => {});
    try {
      await r.connect();
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        if (keys.length > 0) await r.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    } catch {
      // nothing to clean where Redis is gone
    } finally {
      r.disconnect();
    }
  });
  return prefix;
}

/** The shipped pipelines plus the hand-written test-school one. */
export async function pipelinesDir(dir: string): Promise<string> {
  const out = path.join(dir, 'pipelines');
  await fs.cp('pipelines', out, { recursive: true });
  const p = testPipeline({ file: { encoding: 'utf-8', delimiter: ',', namePattern: '*.csv' } });
  await fs.writeFile(path.join(out, 'test-school.yaml'), stringify(p));
  return out;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function runState(db: Db, fileName: string): Promise<{ id: string; state: string } | undefined> {
  const { rows } = await db.query<{ id: string; state: string }>('SELECT id, state FROM run WHERE file_name = $1 ORDER BY received_at DESC LIMIT 1', [fileName]);
  return rows[0];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface Proc {
  child: ChildProcess;
  output: () => string;
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

/** The real CLI in its own process, as an operator starts it. */
export function spawnCli(args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [path.resolve('src/cli/main.ts'), ...args], { env: { ...process.env, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    output: () => out,
    waitForOutput: async (re, timeoutMs = 30_000) => {
      await waitFor(`output ${re}`, async () => re.test(out), timeoutMs);
    },
    exited,
  };
}

/** A Redis server of the test's own, on a free port, that the test may stop and restart. */
export async function ownRedis(extraArgs: string[] = []): Promise<{ url: string; stop(): Promise<void>; start(): Promise<void> }> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], { stdio: 'ignore' });
    await waitFor('redis to start', async () => {
      const r = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 });
      r.on('error', () => {});
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } finally {
        r.disconnect();
      }
    });
  };
  const stop = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const c = child;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  };
  await start();
  onCleanup(stop);
  return { url: `redis://127.0.0.1:${port}`, stop, start };
}
