/**
 * Identity feed benchmark (issue 14, IHE PIXm ITI-104): feed transactions per second — add,
 * revise, merge, remove, each separately, one request at a time as one source sends them —
 * against a 1M-patient index on PostgreSQL, through the real HTTP surface (`serve`'s
 * `PUT|DELETE /Patient?identifier=…` with a SMART token) and directly through
 * feedPatient/removeFeedPatient; the floor beside them: a plain `UPDATE patient` of the same
 * number of rows, one autocommit statement each, in the same run. Then the time until a revised
 * patient is matchable: from the revision's commit until a warm in-memory candidate index (as
 * serve's workers keep one, following changes by index version) offers the patient under the new
 * demographics, and until a one-row roster carrying them matches it (runFile, memory candidates).
 * Last, what the feed costs matching: a roster of --roster rows of index patients matched through
 * the warm copy (runFile, memory candidates) alone, then again while revisions are fed one after
 * another for as long as the run lasts — the copy follows every one of them.
 *
 *   npm run bench:feed -- [--database-url URL | --template DB] [--n 200] [--trials 5] [--roster 20000] [--json FILE]
 *
 * It works on a copy: `CREATE DATABASE … TEMPLATE` of the database bench:v2 kept
 * (/tmp/v2bench/keep1m/database-url.txt) or --template, dropped at the end; --database-url uses
 * that database itself (it is changed).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../src/config/index.ts';
import { blockingKeys } from '../src/match/index.ts';
import { loadPartnerPipeline } from '../src/pipeline/index.ts';
import { candidatesFor, runFile } from '../src/run/index.ts';
import { startServe } from '../src/service/index.ts';
import { addClient, FEED_PARTNER, feedPatient, openPostgres, patientsByIds, removeFeedPatient } from '../src/store/index.ts';
import { makeKeyPair, requestToken } from '../test/bulk-client/client.ts';
import { benchArgs } from './args.ts';
import { measuredOn, printTable } from './report.ts';
import { admin, databaseUrl as urlOf, dropQueueKeys, REDIS_URL } from './server.ts';

const USAGE = `usage: npm run bench:feed -- [--template DB | --database-url URL] [--n N] [--trials N] [--json FILE]
  --template DB      copy this database (CREATE DATABASE … TEMPLATE), drop the copy at the end
                     (default: the one in /tmp/v2bench/keep1m/database-url.txt, bench:v2's 1M index)
  --database-url URL use this database itself (it is changed)
  --n N              transactions per kind and surface (default 200)
  --trials N         revisions timed until matchable (default 5)
  --roster N         rows of the roster matched alone and during the feed (default 20000)`;

const values = benchArgs(
  { template: { type: 'string' }, 'database-url': { type: 'string' }, n: { type: 'string', default: '200' }, trials: { type: 'string', default: '5' }, roster: { type: 'string', default: '20000' }, json: { type: 'string' } } as const,
  USAGE,
);
const N = Number(values.n);
const TRIALS = Number(values.trials);
const ROSTER = Number(values.roster);
/** Patients the feed revises, round and round, while the roster is matched. */
const DURING = 2000;
const log = createLogger('silent');
const secs = (t: number) => (performance.now() - t) / 1000;

interface Row {
  id: string;
  resource: Record<string, unknown>;
  identifier: { system: string; value: string };
}

const ROSTER_HEADER = 'Student ID,Last Name,First Name,Middle Name,Suffix,Birth Date,Gender,Street Address,City,State,Zip,Guardian Phone,Grade\n';

/** A school-district-7 roster line naming index patient `p` (under another given name, if `given`). */
function rosterLine(p: Row, recordId: string, given?: string): string {
  const name = (p.resource.name as { family: string; given?: string[] }[])[0]!;
  const addr = ((p.resource.address as { line?: string[]; city?: string; state?: string; postalCode?: string }[] | undefined) ?? [])[0] ?? {};
  const phone = ((p.resource.telecom as { value: string }[] | undefined) ?? [])[0]?.value ?? '';
  const [y, m, d] = (p.resource.birthDate as string).split('-');
  const sex = p.resource.gender === 'female' ? 'F' : p.resource.gender === 'male' ? 'M' : '';
  const csv = (s: string) => (/[",]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  const fields = [recordId, name.family, given ?? name.given?.[0] ?? '', (name.given ?? [])[1] ?? '', '', `${m}/${d}/${y}`, sex, addr.line?.[0] ?? '', addr.city ?? '', addr.state ?? '', addr.postalCode ?? '', phone, '5'];
  return `${fields.map(csv).join(',')}\n`;
}

let copy: string | undefined;
let databaseUrl = values['database-url'];
if (!databaseUrl) {
  const template = values.template ?? new URL((await fs.readFile('/tmp/v2bench/keep1m/database-url.txt', 'utf8')).trim()).pathname.slice(1);
  copy = `rm_feedbench_${process.pid}`;
  const t = performance.now();
  await admin(`CREATE DATABASE ${copy} TEMPLATE ${template}`);
  console.error(`copied ${template} to ${copy} in ${secs(t).toFixed(1)} s`);
  databaseUrl = urlOf(copy);
}
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-feedbench-'));
const prefix = `rmbench-feed-${randomBytes(4).toString('hex')}`;
const db = await openPostgres(databaseUrl);
let stopServe: (() => Promise<void>) | undefined;
try {
  const patients = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM patient WHERE replaced_by IS NULL AND removed_at IS NULL')).rows[0]!.n;
  // Live patients with one identifier, in an arbitrary but fixed order; disjoint sets per use.
  const { rows } = await db.query<{ id: string; resource: Record<string, unknown> }>(
    `SELECT id, resource FROM patient WHERE replaced_by IS NULL AND removed_at IS NULL AND jsonb_array_length(identifiers) = 1 ORDER BY md5(id) LIMIT $1`,
    [N * 14 + TRIALS * 2 + 10 + ROSTER + DURING],
  );
  const pool: Row[] = rows.map((r) => ({ id: r.id, resource: r.resource, identifier: (r.resource.identifier as { system: string; value: string }[])[0]! }));
  let at = 0;
  const take = (n: number) => pool.slice(at, (at += n));
  const system = pool[0]!.identifier.system;

  const revised = (p: Row, i: number) => ({ ...p.resource, telecom: [{ system: 'phone', value: `217-555-${String(i % 10000).padStart(4, '0')}` }] });
  const mergedInto = (p: Row, survivor: Row) => ({ ...p.resource, active: false, link: [{ other: { reference: `Patient/${survivor.id}` }, type: 'replaced-by' }] });
  const added = (tag: string, i: number) => ({
    resourceType: 'Patient',
    identifier: [{ system, value: `FEEDBENCH-${tag}-${process.pid}-${i}` }],
    active: true,
    name: [{ family: 'Benchmark', given: ['Feed', `N${i}`] }],
    gender: i % 2 ? 'female' : 'male',
    birthDate: `20${String(10 + (i % 10)).padStart(2, '0')}-0${1 + (i % 9)}-1${i % 10}`,
  });

  // Direct: feedPatient / removeFeedPatient, one transaction at a time.
  const direct: Record<string, number> = {};
  const timeDirect = async (kind: string, n: number, one: (i: number) => Promise<unknown>) => {
    const t = performance.now();
    for (let i = 0; i < n; i++) await one(i);
    direct[kind] = n / secs(t);
  };
  const actor = 'client/bench-feed';
  await timeDirect('add', N, (i) => feedPatient(db, { identifier: added('d', i).identifier[0]!, resource: added('d', i), actor }));
  const dRevise = take(N);
  await timeDirect('revise', N, (i) => feedPatient(db, { identifier: dRevise[i]!.identifier, resource: revised(dRevise[i]!, i), actor }));
  const dMerge = take(N);
  const dSurv = take(N);
  await timeDirect('merge', N, (i) => feedPatient(db, { identifier: dMerge[i]!.identifier, resource: mergedInto(dMerge[i]!, dSurv[i]!), actor }));
  const dRemove = take(N);
  await timeDirect('remove', N, (i) => removeFeedPatient(db, { identifier: dRemove[i]!.identifier, actor }));

  // HTTP: serve on this database, a Patient Identity Source registered for the domain, its token.
  // concurrency 0: matching left to worker processes, as a deployment beside a feed would run —
  // otherwise serve's start-up warming of its candidate index (some 20 s of CPU at 1M) would be
  // measured as the feed's first phase.
  const key = await makeKeyPair('ES384');
  await addClient(db, { id: `bench-feed-${process.pid}`, partner: FEED_PARTNER, domains: [system], jwks: key.jwks as never, scopes: 'system/Patient.write', by: 'bench' });
  const tServe = performance.now();
  const service = await startServe({ dropRoot: path.join(work, 'drop'), dataDir: path.join(work, 'data'), pipelinesDir: 'pipelines', redisUrl: REDIS_URL, queuePrefix: prefix, databaseUrl, port: 0, concurrency: 0, log });
  stopServe = async () => void (await service.close());
  const serveS = secs(tServe);
  const base = service.fhirBase;
  const tok = await requestToken({ tokenEndpoint: `${base}/auth/token`, clientId: `bench-feed-${process.pid}`, key, scope: 'system/Patient.write' });
  if (!tok.ok) throw new Error(`token refused: ${JSON.stringify(tok.body)}`);
  const q = (id: { system: string; value: string }) => `${base}/Patient?identifier=${encodeURIComponent(`${id.system}|${id.value}`)}`;
  const headers = { authorization: `Bearer ${tok.accessToken}`, 'content-type': 'application/fhir+json', accept: 'application/fhir+json', prefer: 'return=minimal' };
  const send = async (method: 'PUT' | 'DELETE', id: { system: string; value: string }, body?: unknown, expect = [200, 201, 204]) => {
    const { 'content-type': type, ...bare } = headers;
    const res = await fetch(q(id), { method, headers: body ? { ...bare, 'content-type': type } : bare, ...(body ? { body: JSON.stringify(body) } : {}) });
    await res.arrayBuffer();
    if (!expect.includes(res.status)) throw new Error(`${method} ${id.value}: ${res.status}`);
  };
  const http: Record<string, number> = {};
  const timeHttp = async (kind: string, n: number, one: (i: number) => Promise<unknown>) => {
    const t = performance.now();
    for (let i = 0; i < n; i++) await one(i);
    http[kind] = n / secs(t);
  };
  await timeHttp('add', N, (i) => send('PUT', added('h', i).identifier[0]!, added('h', i)));
  const hRevise = take(N);
  await timeHttp('revise', N, (i) => send('PUT', hRevise[i]!.identifier, revised(hRevise[i]!, i)));
  const hMerge = take(N);
  const hSurv = take(N);
  await timeHttp('merge', N, (i) => send('PUT', hMerge[i]!.identifier, mergedInto(hMerge[i]!, hSurv[i]!)));
  const hRemove = take(N);
  await timeHttp('remove', N, (i) => send('DELETE', hRemove[i]!.identifier));

  // The floor: a plain UPDATE of as many rows, one autocommit statement each.
  const floorRows = take(N);
  const tFloor = performance.now();
  for (const p of floorRows) await db.query(`UPDATE patient SET phone = '2175550199', last_updated = now() WHERE id = $1`, [p.id]);
  const floor = N / secs(tFloor);

  // Until matchable: a warm in-memory copy (built once, as a worker holds it), then revisions.
  const tWarm = performance.now();
  await candidatesFor(db, 'memory');
  const warmS = secs(tWarm);
  const pipeline = await loadPartnerPipeline('pipelines', 'school-district-7');
  const benchPipeline = { ...pipeline, group: { ...pipeline.group!, id: `feed-bench-${process.pid}`, name: 'feed bench', mode: 'append' as const } };
  const toIndex: number[] = [];
  const toMatch: number[] = [];
  const names = ['Quillon', 'Zebadiah', 'Marisol', 'Thaddeus', 'Oriana', 'Leopold', 'Seraphine', 'Evander', 'Ottoline', 'Cassius'];
  for (let k = 0; k < TRIALS; k++) {
    for (const through of ['index', 'roster'] as const) {
      const p = take(1)[0]!;
      const given = names[(k * 2 + (through === 'roster' ? 1 : 0)) % names.length]!;
      const name = (p.resource.name as { family: string; given?: string[] }[])[0]!;
      const resource = { ...p.resource, name: [{ ...name, given: [given, ...(name.given ?? []).slice(1)] }] };
      await feedPatient(db, { identifier: p.identifier, resource, actor });
      const t = performance.now(); // the revision committed
      if (through === 'index') {
        const person = (await patientsByIds(db, [p.id])).get(p.id)!.person;
        const keys = blockingKeys(person, []);
        for (;;) {
          const found = await (await candidatesFor(db, 'memory')).source.byKeys(keys);
          if ([...found.values()].some((l) => l.some((c) => c.id === p.id && c.person.given === person.given))) break;
        }
        toIndex.push((performance.now() - t) / 1000);
      } else {
        const file = path.join(work, `roster-${k}.csv`);
        await fs.writeFile(file, ROSTER_HEADER + rosterLine(p, `FB${k}`, given));
        const out = await runFile(db, log, { file, pipeline: benchPipeline, outDir: path.join(work, 'out'), exportsDir: path.join(work, 'exports'), candidates: 'memory', force: true });
        toMatch.push((performance.now() - t) / 1000);
        const { rows: r } = await db.query<{ outcome: string; patient_id: string | null }>('SELECT outcome, patient_id FROM run_row WHERE run_id = $1', [out.run.id]);
        if (r[0]?.outcome !== 'matched' || r[0].patient_id !== p.id) throw new Error(`the revised patient ${p.id} was not matched: ${JSON.stringify(r[0])}`);
      }
    }
  }

  // What the feed costs matching: the same roster alone, then while revisions are fed.
  const rosterFile = path.join(work, 'roster-during.csv');
  await fs.writeFile(rosterFile, ROSTER_HEADER + take(ROSTER).map((p, i) => rosterLine(p, `R${i}`)).join(''));
  const revisedDuring = take(DURING);
  const matchRoster = async () => {
    const t = performance.now();
    await runFile(db, log, { file: rosterFile, pipeline: benchPipeline, outDir: path.join(work, 'out'), exportsDir: path.join(work, 'exports'), candidates: 'memory', force: true });
    return secs(t);
  };
  await matchRoster(); // the first run of the roster pays for first-time work (compiling, caches): not measured
  const aloneS = await matchRoster();
  let feeding = true;
  let fed = 0;
  const feeder = (async () => {
    for (let i = 0; feeding; i++) {
      const p = revisedDuring[i % DURING]!;
      await feedPatient(db, { identifier: p.identifier, resource: revised(p, N + i), actor });
      fed++;
    }
  })();
  const duringS = await matchRoster();
  feeding = false;
  await feeder;

  const f = (x: number) => x.toFixed(0);
  const ms = (xs: number[]) => `${(1000 * xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(0)} ms mean, ${(1000 * Math.max(...xs)).toFixed(0)} ms max`;
  printTable([
    ['index', `${patients.toLocaleString('en-US')} live patients, PostgreSQL${copy ? ` (copy ${copy})` : ''}`],
    ['transactions per kind', `${N}, one at a time`],
    ['add / s (HTTP | direct)', `${f(http.add!)} | ${f(direct.add!)}`],
    ['revise / s (HTTP | direct)', `${f(http.revise!)} | ${f(direct.revise!)}`],
    ['merge / s (HTTP | direct)', `${f(http.merge!)} | ${f(direct.merge!)}`],
    ['remove / s (HTTP | direct)', `${f(http.remove!)} | ${f(direct.remove!)}`],
    ['floor: plain UPDATE patient / s', f(floor)],
    ['revise ÷ floor (HTTP | direct)', `${(http.revise! / floor).toFixed(2)} | ${(direct.revise! / floor).toFixed(2)}`],
    ['warm candidate index built', `${warmS.toFixed(1)} s`],
    ['revised → offered by the warm index', ms(toIndex)],
    ['revised → 1-row roster matches it', ms(toMatch)],
    [`${ROSTER.toLocaleString('en-US')}-row roster, warm copy: alone`, `${aloneS.toFixed(1)} s (${f(ROSTER / aloneS)} rows/s)`],
    ['the same while the feed revises', `${duringS.toFixed(1)} s (${f(ROSTER / duringS)} rows/s) = ${(duringS / aloneS).toFixed(2)}× alone; ${fed} revisions (${f(fed / duringS)}/s)`],
    ['serve start', `${serveS.toFixed(1)} s`],
  ]);
  if (values.json) {
    await fs.writeFile(
      values.json,
      `${JSON.stringify({ ...measuredOn(), patients, n: N, perSecond: { http, direct, floorUpdate: floor }, untilMatchableS: { warmIndex: toIndex, oneRowRoster: toMatch }, warmIndexBuildS: warmS, roster: { rows: ROSTER, aloneS, duringFeedS: duringS, revisionsFed: fed } }, null, 2)}\n`,
    );
  }
} finally {
  await stopServe?.().catch(() => {});
  await db.close();
  await dropQueueKeys(prefix).catch(() => {});
  await fs.rm(work, { recursive: true, force: true });
  if (copy) await admin(`DROP DATABASE IF EXISTS ${copy} WITH (FORCE)`);
}
