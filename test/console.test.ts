/**
 * The console over real HTTP: sign-in, sessions and tokens, what is refused, what is audited,
 * review decisions through the API, and escaping of partner data. A real server on port 0, real
 * PostgreSQL, real Redis queues for Bull Board; the browser walk-through (console.e2e.test.ts) runs
 * `serve` on the embedded store.
 */
import net from 'node:net';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { hashPassword, newToken, OperatorDirectory, readOperators, sha256Hex, startConsole } from '../src/console/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { feedPatientById } from '../src/store/index.ts';
import { QUEUE } from '../src/queue/index.ts';
import { runFile } from '../src/run/index.ts';
import { getGroup, groupHistory, groupHistoryPage, groupMembers, listAuditEvents, listReviewItems, readRunResults, runRowsPage, type Db } from '../src/store/index.ts';
import { OUTCOMES } from '../src/model/index.ts';
import { onCleanup, REDIS_URL, testPrefix } from './daemon-helpers.ts';
import { HEADER, INDEX, ROSTER } from './fixtures.ts';
import { quietLog, tempDb, tempDir, testPipeline, writeNdjson, writeText } from './helpers.ts';

const PASSWORD = 'a long enough password';
let aliceHash: string;
beforeAll(async () => {
  aliceHash = await hashPassword(PASSWORD);
});

interface Setup {
  url: string;
  db: Db;
  dir: string;
  token: string;
  prefix: string;
  queue: Queue;
  runId: string;
  login(name?: string, password?: string, headers?: Record<string, string>): Promise<Response>;
  /** Signs in as alice and returns the session cookie. */
  session(): Promise<string>;
}

async function setup(o: { loginAttemptsPerMinute?: number; rosterName?: string } = {}): Promise<Setup> {
  const { db, dir } = await tempDb('postgres');
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), INDEX));
  const out = await runFile(db, quietLog, {
    file: await writeText(path.join(dir, o.rosterName ?? 'fall.csv'), ROSTER),
    pipeline: testPipeline(),
    outDir: path.join(dir, 'out'),
    exportsDir: path.join(dir, 'ex'),
  });
  const token = newToken();
  const file = path.join(dir, 'operators.yaml');
  await writeText(file, stringify({ operators: [{ name: 'alice', password: aliceHash }], tokens: [{ name: 'prometheus', sha256: sha256Hex(token) }] }));
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const prefix = testPrefix();
  const queue = new Queue(QUEUE.match, { connection: redis, prefix });
  const { server, url } = await startConsole({
    host: '127.0.0.1',
    port: 0,
    db,
    log: quietLog,
    operators: new OperatorDirectory(file),
    exportsDir: path.join(dir, 'ex'),
    queues: [queue],
    checks: { database: async () => true },
    metrics: { contentType: 'text/plain', render: async () => 'rostermatch_up 1\n' },
    ...(o.loginAttemptsPerMinute ? { loginAttemptsPerMinute: o.loginAttemptsPerMinute } : {}),
  });
  onCleanup(async () => {
    await server.close();
    await queue.close();
    redis.disconnect();
  });
  const login = (name = 'alice', password = PASSWORD, headers: Record<string, string> = {}) =>
    fetch(`${url}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams({ name, password, next: '/review' }) });
  const session = async () => {
    const res = await login();
    expect(res.status).toBe(303);
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('rm_session='))!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    return cookie.split(';')[0]!;
  };
  return { url, db, dir, token, prefix, queue, runId: out.kind === 'completed' ? out.run.id : '', login, session };
}

describe('console sign-in', () => {
  it('sends pages to sign-in and refuses the API without a session or token; /healthz stays open', async () => {
    const s = await setup();
    const page = await fetch(`${s.url}/review`, { redirect: 'manual', headers: { accept: 'text/html' } });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login?next=%2Freview');
    for (const p of ['/api/runs', '/api/review', '/metrics', '/admin/queues/api/queues', `/runs/${s.runId}/results.csv`]) {
      expect((await fetch(`${s.url}${p}`)).status, p).toBe(401);
    }
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
  });

  it('signs an operator in, returns to the page asked for, and never redirects off the site', async () => {
    const s = await setup();
    const res = await s.login();
    expect(res.headers.get('location')).toBe('/review');
    const evil = await fetch(`${s.url}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ name: 'alice', password: PASSWORD, next: '//evil.example/x' }) });
    expect(evil.headers.get('location')).toBe('/runs');
    const cookie = await s.session();
    const api = await fetch(`${s.url}/api/runs`, { headers: { cookie } });
    expect(api.status).toBe(200);
    expect(((await api.json()) as { runs: { id: string }[] }).runs.map((r) => r.id)).toEqual([s.runId]);
  });

  it('sends a correct sign-in only to a path on this site, whatever `next` holds, and never answers 500', async () => {
    const s = await setup({ loginAttemptsPerMinute: 100 });
    // Exactly as a browser or an attacker's link sends them: the form body and query are raw.
    const signIn = (rawNext: string) =>
      fetch(`${s.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `name=alice&password=${encodeURIComponent(PASSWORD)}&next=${rawNext}`,
      });
    const offSite = [
      '/%09/evil.example', // a tab: browsers drop it from a Location, leaving //evil.example
      '/%0a/evil.example',
      '/%0d/evil.example',
      '/%0d%0aSet-Cookie:%20rm_session=x', // CR LF: was a 500 after a correct password
      '/x%0d%0a',
      '/caf%C3%A9', // non-ASCII: was a 500 too
      '/%5C/evil.example', // `/\` is `//` to a browser
      '/%5Cevil.example',
      '/%2F/evil.example',
      '%2F%2Fevil.example',
      '//evil.example/x',
      '/%20/evil.example',
      '%20/evil.example',
      'https://evil.example/',
      'https:/evil.example',
      'javascript:alert(1)',
      '/%252F/evil.example', // decoded once more it is //evil.example
      '/%2509/evil.example',
      '/%255C/evil.example',
      '/%25', // a stray % once decoded
      'evil.example',
      '',
    ];
    // Each sign-in is a full scrypt check (~0.3 s of CPU): sent side by side, checked one by one.
    const onSite = ['/review', `/runs/${s.runId}?outcome=possible`, '/groups'];
    const [offSiteAnswers, onSiteAnswers] = await Promise.all([Promise.all(offSite.map((next) => signIn(next))), Promise.all(onSite.map((next) => signIn(encodeURIComponent(next))))]);
    for (const [i, next] of offSite.entries()) {
      const res = offSiteAnswers[i]!;
      expect({ next, status: res.status, location: res.headers.get('location') }).toEqual({ next, status: 303, location: '/runs' });
      expect(res.headers.getSetCookie().some((c) => c.startsWith('rm_session='))).toBe(true);
    }
    for (const [i, next] of onSite.entries()) {
      expect(onSiteAnswers[i]!.headers.get('location')).toBe(next);
    }
    // The form carries `next` back as it was given: the page must already hold the safe value.
    for (const next of ['/%09/evil.example', '/%5C/evil.example', '/%2F/evil.example', '/%0d%0a', '/caf%C3%A9']) {
      const form = await fetch(`${s.url}/login?next=${next}`);
      expect(form.status).toBe(200);
      expect(await form.text()).toContain('name="next" value="/runs"');
    }
    expect(await (await fetch(`${s.url}/login?next=%2Freview`)).text()).toContain('name="next" value="/review"');
  });

  it('refuses a sign-in posted from another site (login CSRF), by Origin, Referer or Sec-Fetch-Site', async () => {
    const s = await setup({ loginAttemptsPerMinute: 100 });
    const host = new URL(s.url).host;
    const foreign: Record<string, string>[] = [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { origin: `http://${host}.evil.example` },
      { referer: 'https://evil.example/login' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site', origin: s.url },
    ];
    for (const headers of foreign) {
      const res = await s.login('alice', PASSWORD, headers);
      expect({ headers, status: res.status }).toEqual({ headers, status: 403 });
      expect(res.headers.getSetCookie()).toEqual([]);
    }
    expect((await listAuditEvents(s.db, { action: 'login' })).length).toBe(0);
    // The console's own form (same Origin or Referer) and clients that send neither still sign in.
    const own: Record<string, string>[] = [{ origin: s.url }, { referer: `${s.url}/login?next=%2Freview` }, { 'sec-fetch-site': 'same-origin', origin: s.url }, {}];
    for (const headers of own) {
      const res = await s.login('alice', PASSWORD, headers);
      expect({ headers, status: res.status }).toEqual({ headers, status: 303 });
    }
  });

  it('refuses a wrong password and an unknown operator alike, and audits both', async () => {
    const s = await setup();
    expect((await s.login('alice', 'wrong password here')).status).toBe(401);
    expect((await s.login('mallory', PASSWORD)).status).toBe(401);
    const failed = await listAuditEvents(s.db, { action: 'login.failed' });
    expect(failed.map((e) => e.actor).sort()).toEqual(['alice', 'mallory']);
  });

  it('limits sign-in attempts per client', async () => {
    const s = await setup({ loginAttemptsPerMinute: 3 });
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await s.login('alice', 'wrong password here')).status);
    expect(codes).toEqual([401, 401, 401, 429]);
  });

  /** Moves a session's clock back, as if the operator had been away (no waiting in the test). */
  const idleFor = (db: Db, ms: number) => db.query(`UPDATE operator_session SET last_seen_at = now() - make_interval(secs => $1)`, [ms / 1000]);
  const lastSeen = async (db: Db) => (await db.query<{ t: Date }>('SELECT last_seen_at AS t FROM operator_session')).rows.map((r) => r.t.getTime());

  it('ends a session after 30 idle minutes, after 12 hours in all, and at sign-out', async () => {
    const s = await setup();
    const cookie = await s.session();
    await idleFor(s.db, 29 * 60_000);
    expect((await fetch(`${s.url}/api/runs`, { headers: { cookie } })).status).toBe(200);
    await idleFor(s.db, 30 * 60_000 + 1000);
    expect((await fetch(`${s.url}/api/runs`, { headers: { cookie } })).status).toBe(401);
    expect(await lastSeen(s.db)).toEqual([]);

    const busy = await s.session();
    await s.db.query(`UPDATE operator_session SET expires_at = now() - interval '1 second'`);
    expect((await fetch(`${s.url}/api/runs`, { headers: { cookie: busy } })).status).toBe(401);

    const again = await s.session();
    const out = await fetch(`${s.url}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: again } });
    expect(out.status).toBe(303);
    expect((await fetch(`${s.url}/api/runs`, { headers: { cookie: again } })).status).toBe(401);
  });

  it('counts what the operator does as activity, and not the pages\' background refresh', async () => {
    const s = await setup();
    const cookie = await s.session();
    await idleFor(s.db, 10 * 60_000);
    const [before] = await lastSeen(s.db);
    expect((await fetch(`${s.url}/runs/rows`, { headers: { cookie, 'x-rostermatch-poll': '1' } })).status).toBe(200);
    expect(await lastSeen(s.db)).toEqual([before]);
    expect((await fetch(`${s.url}/runs/rows`, { headers: { cookie } })).status).toBe(200);
    const [after] = await lastSeen(s.db);
    expect(after! - before!).toBeGreaterThan(9 * 60_000);
  });

  it('takes an API token as a bearer credential, and refuses an unknown one', async () => {
    const s = await setup();
    const ok = await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${s.token}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('rostermatch_up 1');
    expect((await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${newToken()}` } })).status).toBe(401);
  });

  it('picks up an operator added while it runs', async () => {
    const s = await setup();
    expect((await s.login('bob', PASSWORD)).status).toBe(401);
    const file = path.join(s.dir, 'operators.yaml');
    const ops = await readOperators(file);
    ops.operators.push({ name: 'bob', password: aliceHash });
    await new Promise((r) => setTimeout(r, 20)); // a new mtime
    await writeText(file, stringify(ops));
    expect((await s.login('bob', PASSWORD)).status).toBe(303);
  });

  it('refuses a change posted from another site', async () => {
    const s = await setup();
    const cookie = await s.session();
    const [item] = await listReviewItems(s.db, { state: 'open' });
    const res = await fetch(`${s.url}/api/review/${item!.id}/reject`, { method: 'POST', headers: { cookie, origin: 'https://evil.example', 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(403);
    expect((await listReviewItems(s.db, { state: 'open' })).map((i) => i.id)).toContain(item!.id);
  });
});

describe('console review and audit', () => {
  it('accepts through the API as the signed-in operator: the Group grows, the decision is audited', async () => {
    const s = await setup();
    const cookie = await s.session();
    const json = { cookie, 'content-type': 'application/json' };
    const list = (await (await fetch(`${s.url}/api/review`, { headers: { cookie } })).json()) as {
      items: { id: number; recordId: string; candidates: string[]; row: { submitted?: { person: { given: string } } }; patients: Record<string, { person: { given: string } }> }[];
    };
    const emma = list.items.find((i) => i.recordId === 'r6')!;
    // The roster row and each candidate's demographics, to compare field by field.
    expect(emma.row.submitted?.person.given).toBe('EMMA');
    expect(Object.keys(emma.patients).sort()).toEqual(['p-dup1', 'p-dup2']);

    const wrong = await fetch(`${s.url}/api/review/${emma.id}/accept`, { method: 'POST', headers: json, body: JSON.stringify({ patientId: 'p-ava' }) });
    expect(wrong.status).toBe(409);
    expect(((await wrong.json()) as { error: string }).error).toMatch(/not a candidate/);
    const ok = await fetch(`${s.url}/api/review/${emma.id}/accept`, { method: 'POST', headers: json, body: JSON.stringify({ patientId: 'p-dup1' }) });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { item: { decidedBy: string } }).item.decidedBy).toBe('alice');
    const twice = await fetch(`${s.url}/api/review/${emma.id}/accept`, { method: 'POST', headers: json, body: JSON.stringify({ patientId: 'p-dup2' }) });
    expect(twice.status).toBe(409);
    expect((await groupMembers(s.db, 'test-school-students')).map((m) => m.patientId)).toContain('p-dup1');

    const events = await listAuditEvents(s.db, { actor: 'alice' });
    expect(events.map((e) => e.action)).toEqual(['review.accept', 'view', 'login']);
    expect(events[1]).toMatchObject({ entity: 'review', detail: { items: list.items.map((i) => i.id) } });
  });

  it('audits each page that shows a person\'s data, by ids only', async () => {
    const s = await setup();
    const cookie = await s.session();
    for (const p of [`/runs/${s.runId}`, '/review', '/groups/test-school-students', `/api/runs/${s.runId}/rows`, `/runs/${s.runId}/results.csv`]) {
      const res = await fetch(`${s.url}${p}`, { headers: { cookie } });
      await res.arrayBuffer();
      expect(res.status, p).toBe(200);
    }
    // Lists without demographics (runs, Groups) are not audited.
    const runs = await fetch(`${s.url}/runs`, { headers: { cookie } });
    await runs.arrayBuffer();
    expect(runs.status).toBe(200);
    const events = (await listAuditEvents(s.db, { actor: 'alice' })).filter((e) => e.action !== 'login').reverse();
    expect(events.map((e) => `${e.action} ${e.entity}`)).toEqual([
      `view run/${s.runId}`,
      'view review',
      'view group/test-school-students',
      `view run/${s.runId}/rows`,
      `download run/${s.runId}/results`,
    ]);
    const text = JSON.stringify(events);
    for (const phi of ['EMMA', 'JOHNSON', 'Emma', '2016-01-01']) expect(text).not.toContain(phi);
  });

  it('shows the review queue with the roster row and one button per candidate, escaping partner data', async () => {
    const s = await setup({ rosterName: '<img src=x onerror=alert(1)>.csv' });
    const cookie = await s.session();
    const review = await (await fetch(`${s.url}/review`, { headers: { cookie } })).text();
    expect(review).toContain('Accept Patient/p-dup1');
    expect(review).toContain('Accept Patient/p-dup2');
    expect(review).toContain('None of these');
    const runs = await (await fetch(`${s.url}/runs`, { headers: { cookie } })).text();
    expect(runs).toContain('&lt;img src=x onerror=alert(1)&gt;.csv');
    expect(runs).not.toContain('<img src=x');
  });

  it('shows a candidate compared through a record merged into it under the survivor, with that record\'s values, on the review and run pages', async () => {
    const s = await setup();
    // The IIS merged a second record of Mia (under another surname and address) into Liam's.
    const mia = INDEX.find((p) => p.id === 'p-mia')!;
    await feedPatientById(s.db, { resource: { ...mia, id: 'p-mia-old', name: [{ family: 'Quintero', given: ['Mia'] }], active: false, link: [{ other: { reference: 'Patient/p-liam' }, type: 'replaced-by' }] }, actor: 'test' });
    const out = await runFile(s.db, quietLog, {
      file: await writeText(path.join(s.dir, 'winter.csv'), [HEADER, 'w1,Mia,Quintero,,2014-11-30,F,,,', 'w2,Mya,Quintero,,2014-11-03,F,,,'].join('\n')),
      pipeline: testPipeline({ group: { id: 'winter', name: 'Winter', mode: 'append' } }),
      outDir: path.join(s.dir, 'out'),
      exportsDir: path.join(s.dir, 'ex'),
    });
    if (out.kind !== 'completed') throw new Error(out.kind);
    const [exact, unsure] = await readRunResults(s.db, out.run.id);
    expect(exact).toMatchObject({ outcome: 'matched', patientId: 'p-liam', candidates: [{ patientId: 'p-liam', via: 'p-mia-old' }] });
    expect(unsure!.outcome).toBe('possible');
    expect(unsure!.candidates.find((c) => c.patientId === 'p-liam')?.via).toBe('p-mia-old');
    const cookie = await s.session();
    const review = await (await fetch(`${s.url}/review`, { headers: { cookie } })).text();
    const card = review.slice(review.indexOf('record <b>w2</b>'));
    expect(card).toContain('as merged record Patient/p-mia-old');
    // The values beside the levels are the merged record's (QUINTERO), not the survivor's (WILSON).
    expect(card.slice(0, card.indexOf('</table>'))).toContain('QUINTERO');
    expect(card.slice(0, card.indexOf('</table>'))).not.toContain('WILSON');
    expect(card).toContain('Accept Patient/p-liam');
    const run = await (await fetch(`${s.url}/runs/${out.run.id}`, { headers: { cookie } })).text();
    expect(run).toContain('as merged record Patient/p-mia-old');
  });

  it('closes at once while a client holds a request half sent, instead of waiting for it', async () => {
    const { db } = await tempDb('postgres');
    const { server, url } = await startConsole({ host: '127.0.0.1', port: 0, db, log: quietLog, operators: new OperatorDirectory(path.join(await tempDir(), 'none.yaml')), exportsDir: await tempDir(), queues: [], checks: {}, metrics: { contentType: 'text/plain', render: async () => '' } });
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.on('error', () => {});
    socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    const ended = new Promise((resolve) => socket.once('close', resolve));
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Waiting for the request would take the server's header timeout (a minute): the case's own timeout.
    await server.close();
    await ended;
  });

  it('pages to older runs', async () => {
    const s = await setup();
    const cookie = await s.session();
    const first = await (await fetch(`${s.url}/runs?limit=1`, { headers: { cookie } })).text();
    expect(first).toContain(`/runs/${s.runId}`);
    const older = /href="(\/runs\?limit=1&amp;before=[^"]+)"/.exec(first)?.[1]?.replaceAll('&amp;', '&');
    expect(older).toBeDefined();
    const next = await (await fetch(`${s.url}${older}`, { headers: { cookie } })).text();
    expect(next).not.toContain(`/runs/${s.runId}`);
    expect(next).toContain('No runs yet');
  });

  it('pages a run\'s rows and a Group\'s history exactly, at any depth and with any outcome filter', async () => {
    const s = await setup();
    const all = await readRunResults(s.db, s.runId);
    for (const outcome of [undefined, ...OUTCOMES]) {
      const want = all.filter((r) => !outcome || r.outcome === outcome).map((r) => r.index);
      const got: number[] = [];
      for (let offset = 0; offset <= want.length; offset += 3) {
        got.push(...(await runRowsPage(s.db, s.runId, { ...(outcome ? { outcome } : {}), offset, limit: 3 })).map((r) => r.index));
      }
      expect(got, outcome ?? 'all').toEqual(want);
    }
    const group = (await getGroup(s.db, 'test-school-students'))!;
    const history = await groupHistory(s.db, group.id);
    const paged = [];
    for (let offset = 0; offset <= group.events; offset += 4) paged.push(...(await groupHistoryPage(s.db, group, { offset, limit: 4 })).events);
    expect(paged).toEqual(history);
    expect(group.events).toBe(history.length);
  });

  it('answers a bad filter with the field at fault', async () => {
    const s = await setup();
    const cookie = await s.session();
    const res = await fetch(`${s.url}/api/runs?state=exploded`, { headers: { cookie } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/^state: /);
    expect((await fetch(`${s.url}/api/runs/nope`, { headers: { cookie } })).status).toBe(404);
  });
});

describe('Bull Board in the console', () => {
  it('shows a failed job with its stack, retries it for a signed-in operator, and audits the retry', async () => {
    const s = await setup();
    const cookie = await s.session();
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const worker = new Worker(QUEUE.match, async () => {
      throw new Error('the database went away');
    }, { connection, prefix: s.prefix });
    onCleanup(async () => {
      await worker.close();
      connection.disconnect();
    });
    const job = await s.queue.add('chunk', { runId: 'r1', chunk: 0, from: 0, to: 10 });
    await new Promise<void>((resolve) => worker.on('failed', () => resolve()));
    await worker.close();

    const res = await fetch(`${s.url}/admin/queues/api/queues?activeQueue=${QUEUE.match}&status=failed&page=1`, { headers: { cookie } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { queues: { name: string; jobs: { id: string; failedReason: string; stacktrace: string[] }[] }[] };
    const failed = body.queues.find((q) => q.name === QUEUE.match)!.jobs.find((j) => j.id === job.id)!;
    expect(failed.failedReason).toBe('the database went away');
    expect(failed.stacktrace.join('\n')).toMatch(/Error: the database went away\n\s+at /);

    expect((await fetch(`${s.url}/admin/queues/api/queues/${QUEUE.match}/retry/failed`, { method: 'PUT' })).status).toBe(401);
    const retry = await fetch(`${s.url}/admin/queues/api/queues/${QUEUE.match}/retry/failed`, { method: 'PUT', headers: { cookie } });
    expect(retry.status).toBe(200);
    expect(await (await s.queue.getJob(job.id!))!.getState()).toBe('waiting');
    expect((await listAuditEvents(s.db, { action: 'queues.put' })).map((e) => [e.actor, e.entity])).toEqual([['alice', `queues/${QUEUE.match}/retry/failed`]]);
  });
});
