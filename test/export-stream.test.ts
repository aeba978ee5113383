/**
 * The streamed Group export against the export it replaced: the same bytes, line for line, for
 * Groups larger than one of its pages, with `_since`, with the awkward characters COPY escapes,
 * and plans that walk indexes on a store that was never analysed.
 */
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportGroup, type ExportType } from '../src/export/index.ts';
import { ensureGroup, type Db } from '../src/store/index.ts';
import { tempDb, tempDir, STORES } from './helpers.ts';

const GROUP = 'g-stream';

/**
 * `patients` patients and 0–3 Immunizations each (ids sorting -1, -10, -2), every resource full of
 * what COPY's text format escapes — a long run of backslashes, so that some network chunk ends
 * between a backslash and what it escapes — plus quotes, a tab, a newline and non-ASCII. Every
 * fifth patient is not a member; every seventh joined late; a second Group shares members.
 */
async function fill(db: Db, patients: number): Promise<void> {
  for (const table of ['patient', 'immunization', 'group_member']) await db.exec(`ALTER TABLE ${table} SET (autovacuum_enabled = off)`);
  await db.exec(`
    CREATE TEMP TABLE seed AS
      SELECT n, 'p-' || substr(md5(n::text), 1, 10) AS id, timestamptz '2026-01-01T00:00:00Z' + (n % 5) * interval '1 day' AS lu
        FROM generate_series(0, ${patients - 1}) n;
    INSERT INTO patient (id, given, middle, family, suffix, birth_date, sex, street, city, state, zip, phone, identifiers, resource, content_hash, last_updated)
      SELECT id, 'g', '', 'f', '', '2015-01-01', 'female', '', '', '', '', '', '[]',
             jsonb_build_object('resourceType', 'Patient', 'id', id, 'meta', jsonb_build_object('lastUpdated', lu),
               'name', jsonb_build_array(jsonb_build_object('family', E'O''Brien "the \\\\ one"\\t' || n, 'given', jsonb_build_array(E'Zoë\\n漢字 😀', E'back\\\\slash\\\\n'))),
               'text', repeat(E'\\\\', 301 + n % 3)),
             md5(id), lu
        FROM seed;
    INSERT INTO immunization (id, patient_id, resource, content_hash, last_updated)
      SELECT s.id || '-' || k, s.id,
             jsonb_build_object('resourceType', 'Immunization', 'id', s.id || '-' || k, 'patient', jsonb_build_object('reference', 'Patient/' || s.id),
               'lotNumber', E'"L\\\\' || k || E'"\\t\\r\\u00e9', 'note', repeat(E'\\\\', 200 + k)),
             'h', timestamptz '2026-01-01T00:00:00Z' + ((s.n + k) % 7) * interval '1 day'
        FROM seed s CROSS JOIN LATERAL unnest((ARRAY[1, 10, 2])[1:s.n % 4]) k;
  `);
  await db.transaction(async (tx) => {
    await ensureGroup(tx, { id: GROUP, partner: 'p', name: 'G', mode: 'replace' });
    await ensureGroup(tx, { id: 'other', partner: 'p', name: 'O', mode: 'replace' });
  });
  await db.exec(`
    INSERT INTO group_member (group_id, patient_id, added_at)
      SELECT '${GROUP}', id, CASE WHEN n % 7 = 0 THEN timestamptz '2026-01-20T00:00:00Z' ELSE timestamptz '2026-01-02T00:00:00Z' END
        FROM seed WHERE n % 5 <> 0
      UNION ALL SELECT '${GROUP}', 'not-in-the-index', timestamptz '2026-01-02T00:00:00Z';
    INSERT INTO group_member (group_id, patient_id, added_at) SELECT 'other', id, timestamptz '2026-01-02T00:00:00Z' FROM seed WHERE n % 2 = 0;
  `);
}

/** The lines the export wrote before it streamed: its pages of 1000 members, their resources by `= ANY`. */
async function referenceLines(db: Db, type: ExportType, since: string | undefined, until: string): Promise<string> {
  const [table, owner] = type === 'Patient' ? ['patient', 'id'] : ['immunization', 'patient_id'];
  let out = '';
  for (let after = ''; ; ) {
    const { rows: members } = await db.query<{ patient_id: string; added_at: Date }>(
      'SELECT patient_id, added_at FROM group_member WHERE group_id = $1 AND patient_id > $2 ORDER BY patient_id LIMIT 1000',
      [GROUP, after],
    );
    if (members.length === 0) return out;
    const whole = members.filter((m) => !since || m.added_at.toISOString() > since).map((m) => m.patient_id);
    const changedOnly = since ? members.filter((m) => m.added_at.toISOString() <= since).map((m) => m.patient_id) : [];
    const { rows } = await db.query<{ json: string }>(
      `SELECT resource::text AS json FROM ${table}
        WHERE (${owner} = ANY($1::text[]) OR (${owner} = ANY($2::text[]) AND last_updated > $4::timestamptz)) AND last_updated <= $3::timestamptz
        ORDER BY ${owner}, id`,
      [whole, changedOnly, until, since ?? until],
    );
    for (const r of rows) out += `${r.json}\n`;
    after = members[members.length - 1]!.patient_id;
  }
}

const CASES: { name: string; since?: string; now: string }[] = [
  { name: 'everything', now: '2026-02-01T00:00:00.000Z' },
  { name: '_since: changed resources, and members who joined after it whole', since: '2026-01-04T00:00:00.000Z', now: '2026-02-01T00:00:00.000Z' },
  { name: 'resources changed after the transaction time are left to the next export', since: '2026-01-02T00:00:00.000Z', now: '2026-01-05T12:00:00.000Z' },
];

describe.each(STORES)('streamed Group export (%s)', (store) => {
  it('writes the very bytes the paged export wrote, for a Group of several pages, with and without _since', async () => {
    const { db, dir } = await tempDb(store);
    await fill(db, 3000);
    const dirs: string[] = [];
    for (const c of CASES) {
      const r = await exportGroup(db, { groupId: GROUP, outRoot: path.join(dir, 'out'), now: new Date(c.now), ...(c.since ? { since: c.since } : {}) });
      dirs.push(r.dir);
      for (const out of r.manifest.output) {
        const written = await fs.readFile(path.join(r.dir, `${out.type}.ndjson`), 'utf8');
        const expected = await referenceLines(db, out.type, c.since, c.now);
        expect(written, `${c.name}: ${out.type}`).toBe(expected);
        expect(out.count, `${c.name}: ${out.type} count`).toBe(expected.split('\n').length - 1);
      }
    }
    const first = (await fs.readFile(path.join(dirs[0]!, 'Patient.ndjson'), 'utf8')).split('\n', 1)[0]!;
    expect(JSON.parse(first).name[0].given).toEqual(['Zoë\n漢字 😀', 'back\\slash\\n']);
    // A sanity check on the data: several pages of members, and each case exports something different.
    const counts = await Promise.all(CASES.map((c) => referenceLines(db, 'Immunization', c.since, c.now).then((l) => l.split('\n').length - 1)));
    expect(new Set(counts).size).toBe(CASES.length);
    expect(counts[0]).toBeGreaterThan(2000);
  });

  it('copyOut gives back every value COPY escapes, and a failed query destroys the sink and frees the store', async () => {
    const { db } = await tempDb(store);
    const dir = await tempDir();
    const values = ['tab\there', 'back\\slash', '\\', '\\\\n', '\x01\x0b\x08\x0c\r', 'line\nbreak', 'zoë 😀 漢字', '"quoted"', '\\N'];
    const file = path.join(dir, 'values.txt');
    const select = `SELECT v FROM unnest(ARRAY[${values.map((v) => `E'${v.replace(/[\\']/g, (c) => c + c)}'`).join(', ')}]) WITH ORDINALITY AS t(v, i) ORDER BY i`;
    expect(await db.copyOut(select, createWriteStream(file))).toBe(values.length);
    expect(await fs.readFile(file, 'utf8')).toBe(values.map((v) => `${v}\n`).join(''));

    const sink = createWriteStream(path.join(dir, 'failed.txt'));
    await expect(db.copyOut('SELECT (1 / 0)::text', sink)).rejects.toThrow(/division by zero/);
    expect(sink.destroyed).toBe(true);
    expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('walks group_member and each member’s resources by index on a store never analysed, and after ANALYZE', async () => {
    const { db, dir } = await tempDb(store);
    await fill(db, 30_000);
    const ran: { select: string; settings: string | undefined }[] = [];
    const watched: Db = { ...db, copyOut: (select, sink, settings) => (ran.push({ select, settings }), db.copyOut(select, sink, settings)) };
    await exportGroup(watched, { groupId: GROUP, outRoot: dir, since: '2026-01-04T00:00:00.000Z' });
    expect(ran).toHaveLength(2);
    for (const analysed of [false, true]) {
      if (analysed) await db.exec('ANALYZE patient; ANALYZE immunization; ANALYZE group_member');
      const [patient, immunization] = await Promise.all(ran.map((q) => planNodes(db, q.select, q.settings)));
      expect(patient, `Patient, analysed: ${analysed}`).toEqual(['Nested Loop', 'Index Scan group_member_pkey', 'Index Scan patient_pkey']);
      expect(immunization, `Immunization, analysed: ${analysed}`).toEqual(['Incremental Sort', 'Nested Loop', 'Index Scan group_member_pkey', 'Index Scan immunization_patient']);
      // Left to itself the planner reads immunization whole, either way: the settings are what keep the walk.
      expect(await planNodes(db, ran[1]!.select, undefined), `unset, analysed: ${analysed}`).toContain('Seq Scan immunization');
    }
  });
});

/** The plan of `select` under `settings`, as its node types (and the index or table each scan reads), depth first. */
async function planNodes(db: Db, select: string, settings: string | undefined): Promise<string[]> {
  interface PlanNode {
    'Node Type': string;
    'Index Name'?: string;
    'Relation Name'?: string;
    Plans?: PlanNode[];
  }
  const walk = (n: PlanNode): string[] => [[n['Node Type'], n['Index Name'] ?? n['Relation Name']].filter(Boolean).join(' '), ...(n.Plans ?? []).flatMap(walk)];
  return db.transaction(async (tx) => {
    if (settings) await tx.exec(settings);
    const { rows } = await tx.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] | string }>(`EXPLAIN (FORMAT JSON) ${select}`);
    const plan = rows[0]!['QUERY PLAN'];
    return walk((typeof plan === 'string' ? (JSON.parse(plan) as [{ Plan: PlanNode }]) : plan)[0].Plan);
  });
}
