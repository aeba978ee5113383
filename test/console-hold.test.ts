/**
 * A held run in the console over real HTTP: the runs list and run page show the numbers, the
 * Confirm button posts through the signed-in, same-origin form path, and the change is applied
 * and audited as that operator. Real PostgreSQL, a real server on port 0.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { hashPassword, OperatorDirectory, startConsole } from '../src/console/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { runFile } from '../src/run/index.ts';
import { getGroup, getRun, groupHistory, groupMembers, listAuditEvents } from '../src/store/index.ts';
import { onCleanup } from './daemon-helpers.ts';
import { HEADER, INDEX, ROSTER } from './fixtures.ts';
import { quietLog, tempDb, testPipeline, writeNdjson, writeText } from './helpers.ts';

const PASSWORD = 'a long enough password';
const PARTIAL = [HEADER, 'r1,Ava,Martinez,,2015-03-14,F,12 Oak St,62701,', 'r11,Avery,Martinez,,2015-03-14,F,,,'].join('\n');
const GID = 'test-school-students';

async function setup() {
  const { db, dir } = await tempDb('postgres');
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'P.ndjson'), INDEX));
  const opts = (name: string) => ({ pipeline: testPipeline(), outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'ex'), file: path.join(dir, name) });
  await writeText(path.join(dir, 'fall.csv'), ROSTER);
  await runFile(db, quietLog, opts('fall.csv'));
  const held = async (name: string) => {
    await writeText(path.join(dir, name), `${PARTIAL}\n${name === 'b.csv' ? 'r99,Zed,Nobody,,2001-01-01,M,,,' : ''}`);
    const out = await runFile(db, quietLog, opts(name));
    if (out.kind !== 'held') throw new Error('expected a held run');
    return out.run.id;
  };
  const file = path.join(dir, 'operators.yaml');
  await writeText(file, stringify({ operators: [{ name: 'alice', password: await hashPassword(PASSWORD) }] }));
  const { server, url } = await startConsole({
    host: '127.0.0.1',
    port: 0,
    db,
    log: quietLog,
    operators: new OperatorDirectory(file),
    exportsDir: path.join(dir, 'ex'),
    queues: [],
    checks: { database: async () => true },
    metrics: { contentType: 'text/plain', render: async () => '' },
  });
  onCleanup(async () => void (await server.close()));
  const res = await fetch(`${url}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ name: 'alice', password: PASSWORD, next: '/runs' }) });
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('rm_session='))!.split(';')[0]!;
  const post = (p: string, form: Record<string, string> = {}, headers: Record<string, string> = {}) =>
    fetch(`${url}${p}`, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form) });
  const get = (p: string) => fetch(`${url}${p}`, { headers: { cookie } }).then((r) => r.text());
  return { db, url, cookie, held, post, get };
}

describe('held runs in the console', () => {
  it('lists the numbers, confirms with the button as the signed-in operator, and refuses a post from another site', async () => {
    const s = await setup();
    const runId = await s.held('a.csv');
    const list = await s.get('/runs?state=held');
    expect(list).toContain(`data-run="${runId}" data-state="held"`);
    expect(list).toContain('6 members now; would add 0, remove 5 (83.3 % of the Group; at most 20.0 % without a confirmation)');
    const page = await s.get(`/runs/${runId}`);
    expect(page).toContain(`<form method="post" action="/runs/${runId}/confirm">`);
    expect(page).toContain('Confirm: apply this change');
    expect(page).toContain(`action="/runs/${runId}/discard"`);

    const before = (await getGroup(s.db, GID))!;
    const forged = await s.post(`/runs/${runId}/confirm`, {}, { origin: 'https://evil.example' });
    expect(forged.status).toBe(403);
    expect((await getGroup(s.db, GID))!.version).toBe(before.version);

    const ok = await s.post(`/runs/${runId}/confirm`);
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe(`/runs/${runId}`);
    expect(decodeURIComponent(ok.headers.getSetCookie().find((c) => c.startsWith('rm_flash='))!)).toContain(`Confirmed: Group ${GID} 6 → 1 members (+0 −5)`);
    expect((await groupMembers(s.db, GID)).map((m) => m.patientId)).toEqual(['p-ava']);
    expect((await groupHistory(s.db, GID)).filter((e) => e.action === 'removed').every((e) => e.actor === 'confirm:alice')).toBe(true);
    expect((await listAuditEvents(s.db, { action: 'run.confirm' })).map((e) => [e.actor, e.entity])).toEqual([['alice', `run/${runId}`]]);
    const after = await s.get(`/runs/${runId}`);
    expect(after).toContain('Group change confirmed');
    expect(after).toContain('Confirmed by <b>alice</b>');
    expect(after).not.toContain('Confirm: apply this change');
    expect(await s.get(`/groups/${GID}`)).toContain('held change confirmed by <b>alice</b>');

    // Again: refused with why, and nothing changes.
    const twice = await fetch(`${s.url}/api/runs/${runId}/confirm`, { method: 'POST', headers: { cookie: s.cookie, 'content-type': 'application/json' }, body: '{}' });
    expect(twice.status).toBe(409);
    expect(((await twice.json()) as { error: string }).error).toMatch(/RUN_NOT_HELD: .* is completed \(confirmed by alice/);
  });

  it('discards through the API only with a reason, audited as the operator; the Group unchanged', async () => {
    const s = await setup();
    const runId = await s.held('b.csv');
    const before = (await getGroup(s.db, GID))!;
    const json = (body: unknown) => fetch(`${s.url}/api/runs/${runId}/discard`, { method: 'POST', headers: { cookie: s.cookie, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await json({})).status).toBe(400);
    const ok = await json({ reason: 'a test export, not the roster' });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { run: { state: string } }).run.state).toBe('discarded');
    expect((await getRun(s.db, runId))!.hold?.decision).toMatchObject({ action: 'discarded', by: 'alice', reason: 'a test export, not the roster' });
    expect(await getGroup(s.db, GID)).toEqual(before);
    expect((await listAuditEvents(s.db, { action: 'run.discard' })).map((e) => e.actor)).toEqual(['alice']);
  });
});
