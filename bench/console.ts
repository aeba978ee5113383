/**
 * Console benchmark: fill a fresh PostgreSQL database at production-like volume — thousands of
 * runs, one run of a million rows, a review backlog, a Group of half a million members — start the
 * operators' console (with Bull Board on real Redis queues, and /metrics) in this process, and
 * time the pages and API answers operators and Prometheus ask for: p50, p95 and max latency and
 * requests/s, sequentially and with a few requests in flight. Figures print as a table and are
 * written as JSON, so runs can be compared.
 *
 *   npm run bench:console -- --runs 2000 --rows 1000000 --review 20000 --members 500000
 *        [--patients 200000] [--partners 20] [--requests 30] [--warmup 3] [--concurrency 4]
 *        [--run-page 10000] [--group-page 2500] [--json out.json] [--keep]
 *
 * Every page that shows patient data writes an audit_event row, as it does in production: the
 * table reports how many each request wrote. --keep leaves the database (its URL is printed) for
 * EXPLAIN ANALYZE; the Redis keys are always removed.
 *
 * Beside each p50 it prints the ratio to a floor measured in the same run, the same way: GET
 * /assets/console.css, a request through the same server and HTTP stack answered from memory —
 * what any answer costs before the page's sign-in check, queries and HTML.
 *
 * Needs Redis (REDIS_URL) and a PostgreSQL server where it may create databases
 * (BENCH_DATABASE_URL, default postgres://<user>@127.0.0.1:5432/postgres).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import pg from 'pg';
import { stringify } from 'yaml';
import { createLogger } from '../src/config/index.ts';
import { newToken, OperatorDirectory, sha256Hex, startConsole } from '../src/console/index.ts';
import { loadPartnerPipeline } from '../src/pipeline/index.ts';
import { chunkJobId, connectRedis, intakeJobId, QUEUE } from '../src/queue/index.ts';
import { createMetrics } from '../src/service/metrics.ts';
import { openPostgres } from '../src/store/index.ts';
import { benchArgs } from './args.ts';
import { measuredOn } from './report.ts';
import { admin, databaseUrl, dropQueueKeys, REDIS_URL } from './server.ts';

const USAGE = `usage: npm run bench:console -- [--runs N] [--rows N] [--review N] [--members N] [--patients N] [--partners N]
       [--requests N] [--warmup N] [--concurrency N] [--run-page N] [--group-page N] [--json FILE] [--keep]
  --rows         rows of the one big run          --review      open review items
  --members      members (and history events) of the big Group
  --requests     timed requests per endpoint, sequentially and again with --concurrency in flight
  --run-page, --group-page   the deep page asked of the big run and the big Group
  --keep         leave the database for EXPLAIN ANALYZE (its URL is printed)
  defaults: --runs 2000 --rows 1000000 --review 20000 --members 500000 --patients 200000 --partners 20
            --requests 30 --warmup 3 --concurrency 4 --run-page 10000 --group-page 2500`;
const values = benchArgs(
  {
    runs: { type: 'string', default: '2000' },
    partners: { type: 'string', default: '20' },
    rows: { type: 'string', default: '1000000' },
    review: { type: 'string', default: '20000' },
    patients: { type: 'string', default: '200000' },
    members: { type: 'string', default: '500000' },
    requests: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '4' },
    'run-page': { type: 'string', default: '10000' },
    'group-page': { type: 'string', default: '2500' },
    json: { type: 'string' },
    keep: { type: 'boolean', default: false },
  } as const,
  USAGE,
);
const N = {
  runs: Math.max(20, Number(values.runs)),
  partners: Math.max(1, Number(values.partners)),
  rows: Number(values.rows),
  review: Number(values.review),
  patients: Math.max(1000, Number(values.patients)),
  members: Number(values.members),
  requests: Math.max(1, Number(values.requests)),
  warmup: Math.max(0, Number(values.warmup)),
  concurrency: Math.max(0, Number(values.concurrency)),
};
/** Any p95 above this is called out. */
const SLOW_MS = 300;
const BIG_PARTNER = 'school-district-7';
const BIG_GROUP = 'school-district-7-students';
/** Members (and history events) of every Group but the big one. */
const SMALL_GROUP_MEMBERS = 1000;
/** Completed runs that hold the open review items. */
const REVIEW_RUNS = 400;
/** Runs in `matching`, each with this many chunks of which MATCHING_DONE are recorded in run_chunk. */
const MATCHING_RUNS = 4;
const MATCHING_CHUNKS = 100;
const MATCHING_DONE = 40;

const partners = [BIG_PARTNER, 'acme-health-plan', 'riverside-clinic', ...Array.from({ length: Math.max(0, N.partners - 3) }, (_, i) => (i % 2 ? `clinic-${i + 1}` : `school-district-${i + 10}`))].slice(0, N.partners);
const groupOf = (p: string) => (p === BIG_PARTNER ? BIG_GROUP : `${p}-members`);

// ── Generators (session-local SQL functions of the fill connection) ─────────────────────────────
const GIVEN = 'OLIVIA EMMA AVA SOPHIA ISABELLA MIA AMELIA HARPER EVELYN ABIGAIL LIAM NOAH OLIVER ELIJAH JAMES WILLIAM BENJAMIN LUCAS HENRY THEODORE MARIA JOSE SOFIA MATEO CAMILA DIEGO VALENTINA SANTIAGO LUNA GAEL AALIYAH JAYDEN MALIK NEVAEH DESHAWN ZOE CHLOE ETHAN AIDEN GRACE';
const FAMILY = 'SMITH JOHNSON WILLIAMS BROWN JONES GARCIA MILLER DAVIS RODRIGUEZ MARTINEZ HERNANDEZ LOPEZ GONZALEZ WILSON ANDERSON THOMAS TAYLOR MOORE JACKSON MARTIN LEE PEREZ THOMPSON WHITE HARRIS SANCHEZ CLARK RAMIREZ LEWIS ROBINSON WALKER YOUNG ALLEN KING WRIGHT SCOTT TORRES NGUYEN HILL FLORES GREEN ADAMS NELSON BAKER HALL RIVERA CAMPBELL MITCHELL CARTER ROBERTS GOMEZ PHILLIPS EVANS TURNER DIAZ PARKER CRUZ EDWARDS COLLINS REYES';
const STREETS = 'OAK MAPLE CEDAR PINE ELM WASHINGTON LAKE HILL PARK MAIN CHURCH HIGH MILL RIVER SPRING SUNSET LINCOLN JACKSON FRANKLIN JEFFERSON CHESTNUT WALNUT HICKORY WILLOW BIRCH MEADOW FOREST RIDGE VALLEY PRAIRIE';
const CITIES = 'SPRINGFIELD DECATUR CHAMPAIGN URBANA PEORIA BLOOMINGTON NORMAL JACKSONVILLE LINCOLN TAYLORVILLE CHATHAM ROCHESTER SHERMAN PETERSBURG AUBURN';
const arr = (words: string) => `ARRAY[${words.split(' ').map((w) => `'${w}'`).join(', ')}]`;

type Cmp = { field: string; level: string; weight: number };
/** Field comparisons as the matcher writes them, in its order; `variant` picks the levels. */
function comparisons(kind: 'matched' | 'possible' | 'ambiguous', variant: number): Cmp[] {
  const v = (k: number) => Math.floor(variant / k) % 4;
  const out: Cmp[] = [];
  const given: [string, number][] = kind === 'possible' ? [['jw>=0.88', 2.1], ['different', -4.6], ['initial', 0.8], ['exact', 6.4]] : [['exact', 7.9], ['exact', 6.3], ['nickname', 5.2], ['typo', 4.1]];
  const family: [string, number][] = kind === 'possible' ? [['exact', 9.2], ['compound', 6.1], ['jw>=0.92', 4.4], ['exact', 10.3]] : [['exact', 10.4], ['exact', 8.7], ['compound', 7.3], ['exact', 12.1]];
  const dob: [string, number][] =
    kind === 'matched' ? [['exact', 10.6], ['exact', 10.6], ['exact', 10.6], ['day_month_swap', 4.2]] : kind === 'ambiguous' ? [['exact', 10.6], ['exact', 10.6], ['typo', 3.9], ['exact', 10.6]] : [['typo', 3.9], ['year_off', -2.7], ['different', -11.2], ['day_month_swap', 4.2]];
  out.push({ field: 'given', level: given[v(1)]![0], weight: given[v(1)]![1] });
  out.push({ field: 'family', level: family[v(4)]![0], weight: family[v(4)]![1] });
  out.push({ field: 'birthDate', level: dob[v(16)]![0], weight: dob[v(16)]![1] });
  if (v(2) !== 0) out.push({ field: 'middle', level: v(2) === 3 ? 'different' : 'agree', weight: v(2) === 3 ? -2.3 : 2.9 });
  out.push({ field: 'sex', level: v(3) === 3 ? 'different' : 'agree', weight: v(3) === 3 ? -4.1 : 0.92 });
  out.push({ field: 'zip', level: v(5) === 3 ? 'different' : 'agree', weight: v(5) === 3 ? -1.4 : 2.6 });
  out.push({ field: 'street', level: ['exact', 'similar', 'different', 'exact'][v(6)]!, weight: [5.3, 3.1, -1.8, 5.3][v(6)]! });
  if (v(7) !== 1) out.push({ field: 'phone', level: v(7) === 2 ? 'different' : 'agree', weight: v(7) === 2 ? -1.2 : 6.4 });
  if (v(8) === 0) out.push({ field: 'identifier', level: 'agree', weight: 9.7 });
  return out;
}
const templates = (kind: 'matched' | 'possible' | 'ambiguous', n: number) =>
  JSON.stringify(
    Array.from({ length: n }, (_, i) => {
      const c = comparisons(kind, i * 7919 + 13);
      // The prior (log2 of the index size) is part of the score: about -17.6 for 200k patients.
      return { score: +(c.reduce((s, x) => s + x.weight, 0) - 17.6).toFixed(2), comparisons: c };
    }),
  ).replaceAll("'", "''");

const HELPERS = `
CREATE FUNCTION pg_temp.pid(n bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'P' || lpad(n::text, 7, '0') $$;
CREATE FUNCTION pg_temp.run_id(n bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT md5('run' || n)::uuid::text $$;
-- Patient n's normalised demographics (the patient table, and the roster row a reviewer compares).
CREATE FUNCTION pg_temp.person(n bigint) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object(
    'given', (${arr(GIVEN)})[1 + n % 40],
    'middle', CASE WHEN n % 3 = 0 THEN '' ELSE (${arr(GIVEN)})[1 + (n / 40) % 40] END,
    'family', (${arr(FAMILY)})[1 + (n / 7) % 60],
    'suffix', CASE WHEN n % 97 = 0 THEN 'JR' ELSE '' END,
    'birthDate', to_char(date '2004-09-01' + ((n * 37) % 6570)::int, 'YYYY-MM-DD'),
    'sex', CASE WHEN n % 2 = 0 THEN 'female' ELSE 'male' END,
    'street', (1 + (n * 13) % 9800)::text || ' ' || (${arr(STREETS)})[1 + n % 30] || ' ' || (ARRAY['ST', 'AVE', 'RD', 'DR', 'LN', 'CT'])[1 + n % 6],
    'city', (${arr(CITIES)})[1 + n % 15],
    'state', 'IL',
    'zip', (60001 + (n * 7) % 2900)::text,
    'phone', CASE WHEN n % 11 = 0 THEN '' ELSE '217' || lpad(((n * 7919) % 10000000)::text, 7, '0') END)
$$;
-- Row i's outcome: 82 % matched, 10 % no_match, 4 % possible, 2 % ambiguous, 2 % invalid.
CREATE FUNCTION pg_temp.outcome(i bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN b < 82 THEN 'matched' WHEN b < 92 THEN 'no_match' WHEN b < 96 THEN 'possible' WHEN b < 98 THEN 'ambiguous' ELSE 'invalid' END
    FROM (SELECT (i * 37 + i / 100) % 100 AS b) x
$$;
-- One candidate as the matcher stores it: id, score, probability, every field's level and weight.
CREATE FUNCTION pg_temp.cand(i bigint, j bigint, kind text, np bigint) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  t jsonb := CASE kind WHEN 'matched' THEN '${templates('matched', 16)}'::jsonb -> ((i % 16)::int)
                       WHEN 'possible' THEN '${templates('possible', 16)}'::jsonb -> (((i + j) % 16)::int)
                       ELSE '${templates('ambiguous', 16)}'::jsonb -> (((i + j) % 16)::int) END;
  score float8 := (t->>'score')::float8 - (j - 1) * 1.7;
BEGIN
  RETURN jsonb_build_object('patientId', pg_temp.pid((i * 13 + j * 104729) % np), 'score', round(score::numeric, 2),
                            'probability', round((1 / (1 + power(2, -score)))::numeric, 5), 'comparisons', t->'comparisons')
         || CASE WHEN kind = 'possible' AND j = 1 THEN '{"guard": "birth_date"}'::jsonb ELSE '{}'::jsonb END;
END $$;
-- run_row.detail as insertRunRows writes it.
CREATE FUNCTION pg_temp.detail(i bigint, outcome text, np bigint) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  cands jsonb := '[]';
BEGIN
  IF outcome = 'matched' THEN
    RETURN jsonb_build_object('candidates', jsonb_build_array(pg_temp.cand(i, 1, 'matched', np)))
      || CASE WHEN i % 40 = 0 THEN '{"warnings": [{"field": "phone", "code": "PHONE_INVALID", "message": "7 digits: no area code"}]}'::jsonb ELSE '{}'::jsonb END;
  ELSIF outcome = 'no_match' THEN
    RETURN '{"candidates": []}'::jsonb;
  ELSIF outcome = 'invalid' THEN
    RETURN jsonb_build_object('candidates', '[]'::jsonb, 'problems', jsonb_build_array(jsonb_build_object('field', 'birthDate', 'code', 'DATE_UNPARSEABLE',
      'message', '"' || (1 + i % 12) || '/' || (30 + i % 9) || '/20' || lpad((i % 20)::text, 2, '0') || '" is not a date in any of MM/DD/YYYY, M/D/YYYY')));
  END IF;
  -- possible (1 to 3 candidates) and ambiguous (2 to 4), with the roster row as normalised.
  FOR j IN 1..(CASE WHEN outcome = 'possible' THEN 1 + i % 3 ELSE 2 + i % 3 END) LOOP
    cands := cands || jsonb_build_array(pg_temp.cand(i, j, outcome, np));
  END LOOP;
  RETURN jsonb_build_object('candidates', cands,
    'submitted', jsonb_build_object('person', pg_temp.person((i * 13 + 104729) % np) || jsonb_build_object('birthDate', to_char(date '2004-09-01' + ((i * 41) % 6570)::int, 'YYYY-MM-DD')))
      || CASE WHEN i % 2 = 0 THEN jsonb_build_object('identifier', jsonb_build_object('system', 'urn:school-district-7:student-id', 'value', 'S' || i)) ELSE '{}'::jsonb END);
END $$;
`;

const dbName = `rm_bench_console_${randomBytes(4).toString('hex')}`;
const dbUrl = databaseUrl(dbName);
const prefix = `rmbench-console-${randomBytes(4).toString('hex')}`;
const work = await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-bench-console-'));
await admin(`CREATE DATABASE ${dbName}`);
const secs = (t: number) => +((performance.now() - t) / 1000).toFixed(1);
const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
const rssStart = process.memoryUsage().rss;
const cleanups: (() => Promise<unknown>)[] = [];

try {
  // ── Fill ────────────────────────────────────────────────────────────────────────────────────
  const db = await openPostgres(dbUrl); // runs the migrations: the schema is the product's own
  cleanups.push(() => db.close());
  const fill = new pg.Client({ connectionString: dbUrl });
  await fill.connect();
  cleanups.push(() => fill.end());
  const fillSeconds: Record<string, number> = {};
  const step = async (name: string, fn: () => Promise<unknown>) => {
    const t = performance.now();
    process.stdout.write(`fill: ${name} … `);
    await fn();
    fillSeconds[name] = secs(t);
    console.log(`${fillSeconds[name]} s`);
  };
  const tFill = performance.now();
  await fill.query('SET synchronous_commit = off');
  await fill.query(HELPERS);

  await step(`${N.patients} patients`, () =>
    fill.query(
      `INSERT INTO patient (id, given, middle, family, suffix, birth_date, sex, street, city, state, zip, phone, identifiers, replaced_by, resource, content_hash, last_updated)
       SELECT pg_temp.pid(n), p->>'given', p->>'middle', p->>'family', p->>'suffix', p->>'birthDate', p->>'sex', p->>'street', p->>'city', p->>'state', p->>'zip', p->>'phone',
              jsonb_build_array(jsonb_build_object('system', 'urn:oid:2.16.840.1.113883.3.9999.1', 'value', 'IIS-' || n)), NULL,
              jsonb_build_object('resourceType', 'Patient', 'id', pg_temp.pid(n), 'meta', jsonb_build_object('lastUpdated', '2025-01-01T00:00:00Z'),
                'identifier', jsonb_build_array(jsonb_build_object('system', 'urn:oid:2.16.840.1.113883.3.9999.1', 'value', 'IIS-' || n)),
                'name', jsonb_build_array(jsonb_build_object('use', 'official', 'family', initcap(p->>'family'), 'given', jsonb_build_array(initcap(p->>'given'), initcap(p->>'middle')))),
                'gender', p->>'sex', 'birthDate', p->>'birthDate',
                'address', jsonb_build_array(jsonb_build_object('line', jsonb_build_array(initcap(p->>'street')), 'city', initcap(p->>'city'), 'state', 'IL', 'postalCode', p->>'zip')),
                'telecom', jsonb_build_array(jsonb_build_object('system', 'phone', 'value', p->>'phone'))),
              md5(n::text), now() - (n % 1000) * interval '1 day'
         FROM generate_series(0, $1::bigint - 1) n, pg_temp.person(n) p`,
      [N.patients],
    ),
  );

  const pipelineJson = JSON.stringify(await loadPartnerPipeline('pipelines', BIG_PARTNER));
  const bigN = N.runs - MATCHING_RUNS - 12; // recent and completed
  await step(`${N.runs} runs over ${partners.length} partners`, () =>
    fill.query(
      `INSERT INTO run (id, partner, file_name, file_sha256, state, received_at, finished_at, group_id, counts, summary, result_path, error, pipeline, source_path, row_count, chunk_count, forced, timeline)
       SELECT id, partner, file, sha, state, t,
              CASE WHEN state IN ('completed', 'failed') THEN done END,
              CASE WHEN state = 'completed' THEN grp END,
              CASE WHEN state = 'completed' THEN counts END,
              CASE WHEN state = 'completed' THEN jsonb_build_object('runId', id, 'partner', partner, 'file', file, 'sha256', sha, 'receivedAt', t, 'finishedAt', done,
                'rows', nrows, 'counts', counts,
                'group', jsonb_build_object('id', grp, 'mode', 'replace', 'sizeBefore', 1000, 'sizeAfter', 1000, 'added', nrows / 50, 'removed', nrows / 50),
                'thresholds', jsonb_build_object('match', 18, 'possible', 6),
                'export', jsonb_build_object('dir', '/var/lib/rostermatch/exports/' || grp || '/' || to_char(done AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS"Z"'), 'transactionTime', done),
                'timingsMs', jsonb_build_object('parse', nrows / 20, 'match', nrows / 8, 'record', nrows / 40, 'write', nrows / 100, 'export', 900, 'total', nrows / 20 + nrows / 8 + nrows / 40 + nrows / 100 + 900)) END,
              CASE WHEN state = 'completed' THEN '/var/lib/rostermatch/drop/' || partner || '/outbound/' || replace(file, '.csv', '.results.csv') END,
              CASE WHEN state = 'failed' THEN '{"code": "HEADER_MISSING", "message": "no column for the required field birthDate (looked for: Birth Date, Date of Birth, DOB)"}'::jsonb END,
              jsonb_set($3::jsonb, '{partner}', to_jsonb(partner)),
              '/var/lib/rostermatch/data/spool/' || id || '.csv',
              CASE WHEN state IN ('received', 'failed') THEN NULL ELSE nrows END,
              CASE WHEN state = 'matching' THEN ${MATCHING_CHUNKS} WHEN state IN ('completed') THEN (nrows + 999) / 1000 END,
              false,
              CASE state
                WHEN 'received' THEN jsonb_build_array(jsonb_build_object('state', 'received', 'at', t))
                WHEN 'parsing' THEN jsonb_build_array(jsonb_build_object('state', 'received', 'at', t), jsonb_build_object('state', 'parsing', 'at', t + interval '1 s'))
                WHEN 'matching' THEN jsonb_build_array(jsonb_build_object('state', 'received', 'at', t), jsonb_build_object('state', 'parsing', 'at', t + interval '1 s'),
                  jsonb_build_object('state', 'matching', 'at', t + interval '4 s'))
                WHEN 'failed' THEN jsonb_build_array(jsonb_build_object('state', 'received', 'at', t), jsonb_build_object('state', 'parsing', 'at', t + interval '1 s'),
                  jsonb_build_object('state', 'failed', 'at', done))
                ELSE jsonb_build_array(jsonb_build_object('state', 'received', 'at', t), jsonb_build_object('state', 'parsing', 'at', t + interval '1 s'),
                  jsonb_build_object('state', 'matching', 'at', t + interval '4 s'), jsonb_build_object('state', 'completed', 'at', done))
              END
         FROM (SELECT *, jsonb_build_object('matched', nrows * 82 / 100, 'no_match', nrows / 10, 'possible', nrows / 25, 'ambiguous', nrows / 50,
                                            'invalid', nrows - nrows * 82 / 100 - nrows / 10 - nrows / 25 - nrows / 50) AS counts,
                      partner || '-' || to_char(t, 'YYYY-MM-DD') || '-' || n || '.csv' AS file,
                      t + (4 + nrows / 400) * interval '1 s' AS done
                 FROM (SELECT n, pg_temp.run_id(n) AS id, md5('a' || n) || md5('b' || n) AS sha,
                              CASE WHEN n = $4 THEN $5 ELSE ($1::text[])[1 + n % cardinality($1::text[])] END AS partner,
                              CASE WHEN n = $4 THEN $6 ELSE ($2::text[])[1 + n % cardinality($2::text[])] END AS grp,
                              now() - ($7::int - n) * interval '47 minutes' AS t,
                              CASE WHEN n = $4 THEN $8::int ELSE 200 + (n * 7919) % 8000 END AS nrows,
                              CASE WHEN n = $7 THEN 'received' WHEN n = $7 - 1 THEN 'parsing'
                                   WHEN n > $7 - 2 - ${MATCHING_RUNS} THEN 'matching'
                                   WHEN n % 17 = 3 AND n <> $4 THEN 'failed' ELSE 'completed' END AS state
                         FROM generate_series(1, $7::int) n) a) b`,
      [partners, partners.map(groupOf), pipelineJson, bigN, BIG_PARTNER, BIG_GROUP, N.runs, N.rows],
    ),
  );
  const bigRun = (await fill.query<{ id: string }>('SELECT pg_temp.run_id($1) AS id', [bigN])).rows[0]!.id;

  await step(`${N.rows} rows of run ${bigRun.slice(0, 8)}`, async () => {
    const BATCH = 100_000;
    for (let from = 0; from < N.rows; from += BATCH) {
      await fill.query(
        `INSERT INTO run_row (run_id, row_index, line, record_id, outcome, patient_id, score, detail)
         SELECT $1, i, i + 2, 'S' || lpad(i::text, 8, '0'), o,
                CASE WHEN o = 'matched' THEN d->'candidates'->0->>'patientId' END,
                CASE WHEN o = 'no_match' THEN CASE WHEN i % 4 = 0 THEN NULL ELSE 1.5 + (i % 40) / 10.0 END
                     WHEN o = 'invalid' THEN NULL ELSE (d->'candidates'->0->>'score')::float8 END,
                d
           FROM generate_series($2::int, $3::int - 1) i, pg_temp.outcome(i) o, pg_temp.detail(i, o, $4) d`,
        [bigRun, from, Math.min(N.rows, from + BATCH), N.patients],
      );
    }
    await fill.query(
      `UPDATE run SET counts = c, summary = summary || jsonb_build_object('counts', c, 'rows', $2::int), row_count = $2, chunk_count = ($2 + 999) / 1000
         FROM (SELECT jsonb_build_object('matched', count(*) FILTER (WHERE outcome = 'matched'), 'ambiguous', count(*) FILTER (WHERE outcome = 'ambiguous'),
                 'possible', count(*) FILTER (WHERE outcome = 'possible'), 'no_match', count(*) FILTER (WHERE outcome = 'no_match'),
                 'invalid', count(*) FILTER (WHERE outcome = 'invalid')) AS c FROM run_row WHERE run_id = $1) x
        WHERE id = $1`,
      [bigRun, N.rows],
    );
  });

  await step(`review items: decided from the big run, ${N.review} open`, async () => {
    // The big run's possible/ambiguous rows were decided long ago: older, lower ids, as in a queue that is worked.
    await fill.query(
      `INSERT INTO review_item (run_id, row_index, partner, record_id, outcome, candidates, state, patient_id, decided_by, decided_at)
       SELECT run_id, row_index, $2, record_id, outcome, c,
              CASE WHEN row_index % 3 = 0 THEN 'rejected' ELSE 'accepted' END,
              CASE WHEN row_index % 3 = 0 THEN NULL ELSE c[1] END,
              (ARRAY['alice', 'bob', 'carol'])[1 + row_index % 3], now() - interval '30 days' + row_index * interval '1 s'
         FROM run_row, LATERAL (SELECT ARRAY(SELECT x->>'patientId' FROM jsonb_array_elements(detail->'candidates') x) AS c) k
        WHERE run_id = $1 AND outcome IN ('possible', 'ambiguous') ORDER BY row_index`,
      [bigRun, BIG_PARTNER],
    );
    // Open items: rows of the newest completed runs, with their run_row and candidates that are in the index.
    await fill.query(
      `CREATE TEMP TABLE review_runs AS
         SELECT (row_number() OVER (ORDER BY received_at DESC))::int - 1 AS k, id, partner FROM run
          WHERE state = 'completed' AND id <> $1 ORDER BY received_at DESC LIMIT ${REVIEW_RUNS}`,
      [bigRun],
    );
    const { rows } = await fill.query<{ n: number }>('SELECT count(*)::int AS n FROM review_runs');
    const nk = rows[0]!.n;
    await fill.query(
      `INSERT INTO run_row (run_id, row_index, line, record_id, outcome, patient_id, score, detail)
       SELECT r.id, j / $2, j / $2 + 2, 'R' || lpad(j::text, 8, '0'), o, NULL, (d->'candidates'->0->>'score')::float8, d
         FROM generate_series(0, $1::int - 1) j JOIN review_runs r ON r.k = j % $2,
              LATERAL (SELECT CASE WHEN j % 3 = 0 THEN 'ambiguous' ELSE 'possible' END AS o) oo, pg_temp.detail(j + 50000000, o, $3) d`,
      [N.review, nk, N.patients],
    );
    await fill.query(
      `INSERT INTO review_item (run_id, row_index, partner, record_id, outcome, candidates)
       SELECT rr.run_id, rr.row_index, r.partner, rr.record_id, rr.outcome, ARRAY(SELECT c->>'patientId' FROM jsonb_array_elements(rr.detail->'candidates') c)
         FROM run_row rr JOIN review_runs r ON r.id = rr.run_id ORDER BY r.k DESC, rr.row_index`,
    );
  });

  await step(`Groups: ${BIG_GROUP} with ${N.members} members and events, ${partners.length - 1} of ${SMALL_GROUP_MEMBERS}`, async () => {
    await fill.query(
      `INSERT INTO partner_group (id, partner, name, mode, version, created_at, updated_at)
       SELECT g, p, initcap(replace(p, '-', ' ')) || ' members', CASE WHEN p = $3 THEN 'replace' ELSE 'append' END,
              (SELECT count(*) FROM run WHERE partner = p AND state = 'completed'),
              (SELECT min(received_at) FROM run WHERE partner = p), coalesce((SELECT max(finished_at) FROM run WHERE partner = p AND state = 'completed'), now())
         FROM unnest($1::text[], $2::text[]) AS x(p, g)`,
      [partners, partners.map(groupOf), BIG_PARTNER],
    );
    for (const p of partners) {
      const size = p === BIG_PARTNER ? N.members : SMALL_GROUP_MEMBERS;
      // Members joined run by run, oldest first; every tenth event is someone leaving.
      const params = [groupOf(p), p, size];
      const runs = `(SELECT array_agg(id ORDER BY received_at) AS ids, array_agg(finished_at ORDER BY received_at) AS ats FROM run WHERE partner = $2 AND state = 'completed')`;
      const at = `least(n::bigint * cardinality(r.ids) / $3, cardinality(r.ids) - 1)::int + 1`;
      await fill.query(
        `INSERT INTO group_member (group_id, patient_id, added_at, added_by_run)
         SELECT $1, pg_temp.pid(n), coalesce(r.ats[${at}], now()), r.ids[${at}] FROM generate_series(0, $3::int - 1) n, ${runs} r`,
        params,
      );
      await fill.query(
        `INSERT INTO group_event (group_id, patient_id, action, at, run_id, actor)
         SELECT $1, pg_temp.pid(CASE WHEN n % 10 = 9 THEN n + $3 ELSE n END), CASE WHEN n % 10 = 9 THEN 'removed' ELSE 'added' END,
                coalesce(r.ats[${at}], now()), r.ids[${at}], 'serve'
           FROM generate_series(0, $3::int - 1) n, ${runs} r ORDER BY n`,
        params,
      );
    }
    // What applyMembership keeps on each Group as it writes; filled behind its back here.
    await fill.query(
      `UPDATE partner_group g SET member_count = (SELECT count(*) FROM group_member m WHERE m.group_id = g.id),
                                  event_count = (SELECT count(*) FROM group_event e WHERE e.group_id = g.id)`,
    );
  });

  await step('exports (one per completed run), run_chunk rows, queued jobs', async () => {
    await fill.query(
      `INSERT INTO export (id, group_id, transaction_time, dir, manifest, run_id)
       SELECT r.group_id || '/' || stamp, r.group_id, r.finished_at, dir,
              jsonb_build_object('transactionTime', r.finished_at, 'request', 'Group/' || r.group_id || '/$export', 'requiresAccessToken', false,
                'output', jsonb_build_array(
                  jsonb_build_object('type', 'Patient', 'url', 'file://' || dir || '/Patient.ndjson', 'count', size),
                  jsonb_build_object('type', 'Immunization', 'url', 'file://' || dir || '/Immunization.ndjson', 'count', size * 14),
                  jsonb_build_object('type', 'Group', 'url', 'file://' || dir || '/Group.ndjson', 'count', 1)),
                'error', '[]'::jsonb),
              r.id
         FROM run r, LATERAL (SELECT to_char(r.finished_at AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS"Z"') AS stamp,
                                     CASE WHEN r.group_id = $1 THEN $2::int ELSE ${SMALL_GROUP_MEMBERS} END AS size) s,
              LATERAL (SELECT '/var/lib/rostermatch/data/exports/' || r.group_id || '/' || stamp AS dir) d
        WHERE r.state = 'completed'`,
      [BIG_GROUP, N.members],
    );
    await fill.query(
      `INSERT INTO run_chunk (run_id, chunk, worker, finished_at)
       SELECT r.id, c, CASE WHEN c % 2 = 0 THEN 'worker-a:4711' ELSE 'worker-b:4712' END, r.received_at + (5 + c) * interval '1 s'
         FROM run r, generate_series(0, ${MATCHING_DONE - 1}) c WHERE r.state = 'matching'`,
    );
  });

  // As autovacuum would have left it; the checkpoint flushes the fill's writes so they do not land mid-measurement.
  await step('VACUUM ANALYZE, CHECKPOINT', async () => {
    await fill.query('VACUUM ANALYZE');
    await fill.query('CHECKPOINT').catch(() => {}); // needs superuser or pg_checkpoint
  });
  fillSeconds.total = secs(tFill);

  // ── Serve ───────────────────────────────────────────────────────────────────────────────────
  const redis = connectRedis(REDIS_URL);
  cleanups.push(async () => redis.disconnect());
  cleanups.push(() => dropQueueKeys(prefix));
  const queues = [QUEUE.intake, QUEUE.match, QUEUE.finalise].map((name) => new Queue(name, { connection: redis, prefix }));
  for (const q of queues) q.on('error', () => {});
  cleanups.push(() => Promise.all(queues.map((q) => q.close())));
  // What Bull Board shows while runs are queued: the unmatched chunks of the runs in `matching`, an intake job.
  const { rows: pending } = await db.query<{ id: string; partner: string; file_sha256: string; state: string }>(
    `SELECT id, partner, file_sha256, state FROM run WHERE state IN ('received', 'parsing', 'matching')`,
  );
  for (const r of pending) {
    if (r.state !== 'matching') await queues[0]!.add('intake', { runId: r.id, store: db.storeId }, { jobId: intakeJobId(db.storeId, r.partner, r.file_sha256) });
    else {
      await queues[1]!.addBulk(
        Array.from({ length: MATCHING_CHUNKS - MATCHING_DONE }, (_, i) => {
          const chunk = MATCHING_DONE + i;
          return { name: 'chunk', data: { runId: r.id, store: db.storeId, chunk, from: chunk * 1000, to: (chunk + 1) * 1000 }, opts: { jobId: chunkJobId(r.id, chunk) } };
        }),
      );
    }
  }

  const metrics = await createMetrics({ db, connection: redis, prefix });
  cleanups.push(() => metrics.close());
  const token = newToken();
  const operatorsFile = path.join(work, 'operators.yaml');
  await fs.writeFile(operatorsFile, stringify({ operators: [], tokens: [{ name: 'bench', sha256: sha256Hex(token) }] }), { mode: 0o600 });
  const { server, url } = await startConsole({
    host: '127.0.0.1',
    port: 0,
    db,
    log: createLogger('silent'),
    operators: new OperatorDirectory(operatorsFile),
    exportsDir: path.join(work, 'exports'),
    queues,
    checks: { database: async () => (await db.query('SELECT 1')).rows.length === 1 },
    metrics,
  });
  cleanups.push(() => server.close());
  const rssAfterFill = process.memoryUsage().rss;

  // ── Measure ─────────────────────────────────────────────────────────────────────────────────
  const runPages = Math.ceil(N.rows / 50);
  const eventPages = Math.ceil(N.members / 100);
  const runPage = Math.min(Number(values['run-page']), runPages);
  const groupPage = Math.min(Number(values['group-page']), eventPages);
  const HTML = 'text/html';
  const JSON_ = 'application/json';
  const endpoints: { name: string; path: string; accept: string }[] = [
    { name: '/runs', path: '/runs', accept: HTML },
    { name: '/runs/rows (2 s poll)', path: '/runs/rows', accept: HTML },
    { name: '/api/runs?limit=50', path: '/api/runs?limit=50', accept: JSON_ },
    { name: '/runs/<big> page 1', path: `/runs/${bigRun}`, accept: HTML },
    { name: `/runs/<big> page ${runPage}`, path: `/runs/${bigRun}?page=${runPage}`, accept: HTML },
    { name: '/runs/<big>?outcome=possible', path: `/runs/${bigRun}?outcome=possible`, accept: HTML },
    { name: '/groups', path: '/groups', accept: HTML },
    { name: '/groups/<big> page 1', path: `/groups/${BIG_GROUP}`, accept: HTML },
    { name: `/groups/<big> page ${groupPage}`, path: `/groups/${BIG_GROUP}?page=${groupPage}`, accept: HTML },
    { name: '/review', path: '/review', accept: HTML },
    { name: '/api/review?limit=100', path: '/api/review?limit=100', accept: JSON_ },
    { name: '/metrics', path: '/metrics', accept: 'text/plain' },
    { name: '/admin/queues/api/queues', path: '/admin/queues/api/queues', accept: JSON_ },
    {
      name: '… ?activeQueue=match (board open)',
      path: `/admin/queues/api/queues?activeQueue=${QUEUE.match}&status=latest&page=1&jobsPerPage=10`,
      accept: JSON_,
    },
  ];
  const FLOOR = { path: '/assets/console.css', accept: 'text/css' };
  const auditCount = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_event')).rows[0]!.n;
  const get = async (p: string, accept: string): Promise<{ ms: number; bytes: number }> => {
    const t = performance.now();
    const res = await fetch(`${url}${p}`, { headers: { authorization: `Bearer ${token}`, accept } });
    const body = await res.arrayBuffer();
    const ms = performance.now() - t;
    if (res.status !== 200) throw new Error(`GET ${p}: ${res.status} ${Buffer.from(body).toString('utf8').slice(0, 300)}`);
    return { ms, bytes: body.byteLength };
  };
  const stats = (ms: number[], wallMs: number) => {
    const s = [...ms].sort((a, b) => a - b);
    const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
    return { p50: +q(0.5).toFixed(1), p95: +q(0.95).toFixed(1), max: +s[s.length - 1]!.toFixed(1), rps: +((1000 * s.length) / wallMs).toFixed(1) };
  };
  type Stats = ReturnType<typeof stats>;
  /** Warm-up, then N.requests one after another, then N.requests with N.concurrency in flight. */
  const measure = async (e: { path: string; accept: string }) => {
    let bytes = 0;
    for (let i = 0; i < N.warmup; i++) bytes = (await get(e.path, e.accept)).bytes;
    const seq: number[] = [];
    let t = performance.now();
    for (let i = 0; i < N.requests; i++) seq.push((await get(e.path, e.accept)).ms);
    const sequential = stats(seq, performance.now() - t);
    let concurrent: Stats | null = null;
    if (N.concurrency > 1) {
      const par: number[] = [];
      let left = N.requests;
      t = performance.now();
      await Promise.all(
        Array.from({ length: N.concurrency }, async () => {
          while (left-- > 0) par.push((await get(e.path, e.accept)).ms);
        }),
      );
      concurrent = stats(par, performance.now() - t);
    }
    return { bytes, sequential, concurrent };
  };
  const results: { name: string; path: string; bytes: number; sequential: Stats; concurrent: Stats | null; p50ToFloor: number; auditRowsPerRequest: number; slow: boolean }[] = [];
  const auditBefore = await auditCount();
  const tMeasure = performance.now();
  const floor = await measure(FLOOR);
  for (const e of endpoints) {
    const a0 = await auditCount();
    const { bytes, sequential, concurrent } = await measure(e);
    const requests = N.warmup + N.requests + (concurrent ? N.requests : 0);
    const auditRowsPerRequest = +(((await auditCount()) - a0) / requests).toFixed(2);
    const slow = sequential.p95 > SLOW_MS || (concurrent?.p95 ?? 0) > SLOW_MS;
    const p50ToFloor = +(sequential.p50 / floor.sequential.p50).toFixed(1);
    results.push({ name: e.name, path: e.path.replace(bigRun, '<big>'), bytes, sequential, concurrent, p50ToFloor, auditRowsPerRequest, slow });
    console.error(`measured ${e.name}: p50 ${sequential.p50} ms`);
  }
  const measureSeconds = secs(tMeasure);
  const auditWritten = (await auditCount()) - auditBefore;

  const { rows: sizes } = await db.query<{ name: string; rows: string; mb: number }>(
    `SELECT c.relname AS name, c.reltuples::bigint::text AS rows, round(pg_total_relation_size(c.oid) / 1048576.0)::int AS mb
       FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
      WHERE s.nspname = 'public' AND c.relkind = 'r' AND pg_total_relation_size(c.oid) > 1048576 ORDER BY pg_total_relation_size(c.oid) DESC`,
  );
  const { rows: version } = await db.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  const figures = {
    ...measuredOn(),
    postgres: version[0]!.v,
    volume: { runs: N.runs, partners: partners.length, bigRunRows: N.rows, openReviewItems: N.review, patients: N.patients, groupMembers: N.members, groupEvents: N.members },
    tables: Object.fromEntries(sizes.map((s) => [s.name, { rows: Number(s.rows), mb: s.mb }])),
    fillSeconds,
    requestsPerEndpoint: { warmup: N.warmup, sequential: N.requests, concurrent: N.concurrency > 1 ? N.requests : 0, concurrency: N.concurrency },
    floor: { path: FLOOR.path, sequential: floor.sequential, concurrent: floor.concurrent },
    endpoints: results,
    measureSeconds,
    auditEventsWritten: auditWritten,
    rssMb: { start: mb(rssStart), afterFill: mb(rssAfterFill), end: mb(process.memoryUsage().rss), peak: Math.round(process.resourceUsage().maxRSS / 1024) },
  };

  console.log(
    `\nvolume: ${N.runs} runs / ${partners.length} partners, big run ${N.rows} rows, ${N.review} open review items, ${N.patients} patients, Group of ${N.members} members and events; fill ${fillSeconds.total} s`,
  );
  console.log(`tables: ${sizes.map((s) => `${s.name} ${s.mb} MB`).join(', ')}`);
  const c = N.concurrency > 1 ? `c=${N.concurrency}` : '';
  const head = ['endpoint', 'KB', 'p50 ms', '÷ floor', 'p95 ms', 'max ms', 'req/s', ...(c ? [`${c} p50`, 'p95', 'max', 'req/s'] : []), 'audit/req', ''];
  const table = results.map((r) => [
    r.name,
    (r.bytes / 1024).toFixed(1),
    r.sequential.p50,
    `${r.p50ToFloor}×`,
    r.sequential.p95,
    r.sequential.max,
    r.sequential.rps,
    ...(r.concurrent ? [r.concurrent.p50, r.concurrent.p95, r.concurrent.max, r.concurrent.rps] : []),
    r.auditRowsPerRequest,
    r.slow ? `SLOW (p95 > ${SLOW_MS} ms)` : '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => String(row[i]).length)));
  const line = (row: (string | number)[]) => row.map((v, i) => (i === 0 ? String(v).padEnd(widths[i]!) : String(v).padStart(widths[i]!))).join('  ').trimEnd();
  console.log(`${N.warmup} warm-up, ${N.requests} sequential${c ? ` and ${N.requests} with ${N.concurrency} in flight` : ''} requests per endpoint (${measureSeconds} s)`);
  const f = floor.sequential;
  console.log(`floor: GET ${FLOOR.path} (answered from memory), measured the same way: p50 ${f.p50} ms, p95 ${f.p95} ms, max ${f.max} ms, ${f.rps} req/s${floor.concurrent ? `; ${c} p50 ${floor.concurrent.p50} ms` : ''}`);
  console.log(line(head));
  for (const row of table) console.log(line(row));
  console.log(`audit_event rows written while measuring: ${auditWritten} (pages showing patient data record who saw what)`);
  console.log(`process RSS (console, metrics and this client) MB: start ${figures.rssMb.start}, after fill ${figures.rssMb.afterFill}, end ${figures.rssMb.end}, peak ${figures.rssMb.peak}`);
  if (values.json) await fs.writeFile(values.json, `${JSON.stringify(figures, null, 2)}\n`);
  if (values.keep) console.log(`kept database: ${dbUrl}  (big run ${bigRun}, Group ${BIG_GROUP})`);
} finally {
  for (const fn of cleanups.reverse()) await fn().catch((e: Error) => console.error(`cleanup: ${e.message}`));
  if (!values.keep) await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
  await fs.rm(work, { recursive: true, force: true });
}

