/**
 * A Group `$export` streams: a real `rostermatch serve` child process on PostgreSQL exports a
 * 100,000-member Group over real HTTP — SMART Backend Services token, kick-off, polling and the
 * manifest by the independent client of test/bulk-client — writing several times more NDJSON than
 * its resident memory grows by. The store is filled by SQL (bench/fill.ts, as bench:export fills
 * it), never analysed; the serve process's peak RSS is VmHWM in /proc/<pid>/status.
 *
 * The bound: RSS when the kick-off is sent + 150 MB. Measured on this project's 2-core machine
 * (bench:export, bench/fhir-export.ts), the Patient and Immunization types grow serve's RSS by
 * 75–92 MB whatever they write — 310 MB and 608 MB for 100k members, 2.9 GB for 500k — (V8's heap
 * and the pg and stream buffers warming up, not the rows), 91 MB at a load average of 10; 150 MB
 * leaves room for a loaded CI machine while failing any export that holds a type's rows in
 * memory: here 100k Patients of ~470 bytes and 1M Immunizations of ~350 bytes, about 380 MB.
 *
 * No `_type`, as a partner would ask: the Group resource, which lists every member, is streamed
 * from the store too (src/store/groups.ts writeFhirGroup), not built in memory.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ownQueuePrefix, procMemory, sampleRss, spawnServe } from '../bench/fhir-export.ts';
import { dropQueueKeys } from '../bench/server.ts';
import { fillStore, GROUP, GROUP_PARTNER, type Sizes } from '../bench/fill.ts';
import { addClient, openPostgres } from '../src/store/index.ts';
import { kickOff, makeKeyPair, poll, requestToken } from './bulk-client/client.ts';
import { tempPgDatabase } from './helpers.ts';

const MEMBERS = 100_000;
const SIZES: Sizes = { patients: MEMBERS, members: MEMBERS, immunizations: 10 * MEMBERS, memberImmunizations: 10 * MEMBERS };
/** What serve's RSS may grow by while it exports (see above). */
const GROWTH_BOUND_MB = 150;

describe('a Group $export through a serve process on PostgreSQL', () => {
  it(`keeps serve's peak RSS within ${GROWTH_BOUND_MB} MB of where it started while writing a ${MEMBERS}-member Group's ${SIZES.immunizations} Immunizations, and the manifest counts them all`, async () => {
    const url = await tempPgDatabase();
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-fhir-rss-'));
    const prefix = ownQueuePrefix('test');
    const key = await makeKeyPair('ES384');
    const t0 = performance.now();
    const db = await openPostgres(url);
    try {
      await fillStore(db, SIZES);
      await addClient(db, { id: 'rss-client', partner: GROUP_PARTNER, jwks: key.jwks as never, scopes: 'system/*.read', by: 'test' });
    } finally {
      await db.close();
    }
    const fillS = (performance.now() - t0) / 1000;
    const serve = await spawnServe({ dataDir, databaseUrl: url, queuePrefix: prefix });
    try {
      const token = await requestToken({ tokenEndpoint: `${serve.fhirBase}/auth/token`, clientId: 'rss-client', key, scope: 'system/*.read' });
      if (!token.ok) throw new Error(`token refused: ${JSON.stringify(token.body)}`);
      // The token request warmed up the HTTP path; the baseline is serve as it waits for work.
      const before = await procMemory(serve.pid);
      const sampler = sampleRss(serve.pid);
      const t1 = performance.now();
      const k = await kickOff({ fhirBase: serve.fhirBase, groupId: GROUP, token: token.accessToken, method: 'GET' });
      expect(k.status, JSON.stringify(k.body)).toBe(202);
      const done = await poll({ statusUrl: k.contentLocation!, token: token.accessToken, maxWaitMs: 240_000 });
      const exportS = (performance.now() - t1) / 1000;
      const sampledMax = await sampler.stop();
      const after = await procMemory(serve.pid);
      expect(done.status, `${JSON.stringify(done.body)}\n${serve.output().slice(-2000)}`).toBe(200);
      expect(done.problems).toEqual([]);

      const counts = Object.fromEntries(done.manifest!.output.map((o) => [o.type, o.count]));
      expect(counts).toEqual({ Patient: MEMBERS, Immunization: SIZES.memberImmunizations, Group: 1 });
      const jobDir = path.join(serve.bulkRoot, k.contentLocation!.split('/').pop()!);
      let written = 0;
      for (const f of await fs.readdir(jobDir)) written += (await fs.stat(path.join(jobDir, f))).size;
      const writtenMb = written / 2 ** 20;

      const growth = after.hwmMb - before.rssMb;
      const figures = { rssAtKickOffMb: before.rssMb, peakRssMb: after.hwmMb, sampledMaxRssMb: sampledMax, growthMb: growth, writtenMb: Math.round(writtenMb), fillS: +fillS.toFixed(1), exportS: +exportS.toFixed(1) };
      console.log(`serve during a ${MEMBERS}-member $export: ${JSON.stringify(figures)}`);
      // The files are what a non-streaming export would have held: well over twice the bound.
      expect(writtenMb, JSON.stringify(figures)).toBeGreaterThan(2.5 * GROWTH_BOUND_MB);
      expect(growth, JSON.stringify(figures)).toBeLessThan(GROWTH_BOUND_MB);
    } finally {
      await serve.stop();
      await dropQueueKeys(prefix);
      await fs.rm(dataDir, { recursive: true, force: true });
    }
  }, 480_000);
});
