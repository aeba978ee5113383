/**
 * Same person, same outcome (issue 13's acceptance point): each committed sample roster, run as
 * the flat file it is and again as a batch of VXU (Z22) messages and as a batch of QBP (Z34)
 * messages carrying the same rows' cells (src/samples/hl7v2.ts), gives every person the same
 * outcome, patient, score and candidates, and leaves the partner's Group with the same members.
 * Each run has a store of its own holding the sample index: a PostgreSQL database copied from one
 * the index was loaded into once (CREATE DATABASE … TEMPLATE), since loading it nine times would
 * take most of the test's time. Nothing but the index is in the copy: no runs, Groups or decisions.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RowResult } from '../src/model/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { loadPartnerPipeline, type Pipeline } from '../src/pipeline/index.ts';
import { runFile } from '../src/run/index.ts';
import { isHl7Date } from '../src/hl7v2/read.ts';
import { controlIdOf, rosterBirthDate, rosterCells, v2PipelineFor, writeV2Batch, type RosterCells } from '../src/samples/hl7v2.ts';
import { groupMembers, openPostgres, streamRunResults } from '../src/store/index.ts';
import { pgAdmin, quietLog, tempDir, TEST_PG_URL, writeText } from './helpers.ts';

const ROSTERS = [
  { partner: 'school-district-7', file: 'district7-fall.csv' },
  { partner: 'riverside-clinic', file: 'riverside-panel.csv' },
  { partner: 'acme-health-plan', file: 'acme-members-202611.txt' },
] as const;

interface Ran {
  results: RowResult[];
  members: string[];
}


function urlOf(name: string): string {
  const url = new URL(TEST_PG_URL);
  url.pathname = `/${name}`;
  return url.href;
}

const INDEXED = `rm_test_${randomBytes(6).toString('hex')}`;

beforeAll(async () => {
  await pgAdmin(`CREATE DATABASE ${INDEXED}`);
  const db = await openPostgres(urlOf(INDEXED));
  try {
    await loadIndexFile(db, path.resolve('samples/iis/Patient.ndjson'));
    await loadIndexFile(db, path.resolve('samples/iis/Immunization.ndjson'));
  } finally {
    await db.close();
  }
}, 120_000);
afterAll(() => pgAdmin(`DROP DATABASE IF EXISTS ${INDEXED} WITH (FORCE)`));

/** One file through runFile on a fresh store holding the sample index: every row's result, and the Group's members after. */
async function run(file: string, pipeline: Pipeline): Promise<Ran> {
  const name = `rm_test_${randomBytes(6).toString('hex')}`;
  await pgAdmin(`CREATE DATABASE ${name} TEMPLATE ${INDEXED}`);
  const db = await openPostgres(urlOf(name));
  try {
    const dir = await tempDir();
    const out = await runFile(db, quietLog, { file, pipeline, outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'exports') });
    expect(out.kind).toBe('completed');
    const results: RowResult[] = [];
    for await (const page of streamRunResults(db, out.run.id)) results.push(...page);
    return { results, members: (await groupMembers(db, pipeline.group.id)).map((m) => m.patientId) };
  } finally {
    await db.close();
    await pgAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

/**
 * Why a row's message may rightly be matched differently from the row, or undefined when it may
 * not: the two cases where the same cells mean more in a message than in a roster.
 */
function legitimateDifference(row: RosterCells, roster: Pipeline): 'blank record id' | 'hl7 date' | undefined {
  if ((row.fields.recordId ?? '').trim() === '') return 'blank record id';
  const dob = row.fields.birthDate ?? '';
  if (rosterBirthDate(dob, roster, new Date().toISOString().slice(0, 10)) === undefined && /^\d{8}/.test(dob.trim()) && isHl7Date(dob.trim())) return 'hl7 date';
  return undefined;
}

/** What must be the same whichever way a person arrived. */
function outcomeOf(r: RowResult) {
  return { outcome: r.outcome, patientId: r.patientId, score: r.score, candidates: r.candidates };
}

/**
 * Runs `rosterFile` with `roster` (in append mode), and the same rows as a VXU batch and as a QBP
 * batch with the matching hl7v2 pipeline; returns the roster side's run for further checks, and
 * how many rows were let off the comparison as legitimate differences.
 */
async function expectSameOutcomes(roster: Pipeline, rosterFile: string): Promise<Ran & { exempt: number }> {
  // Both sides add to the Group: an HL7 v2 feed only appends, so the roster is run in append mode too.
  const flatPipeline: Pipeline = { ...roster, group: { ...roster.group, mode: 'append' } };
  const work = await tempDir();
  const today = new Date().toISOString().slice(0, 10);
  const vxuFile = path.join(work, `${roster.partner}.vxu.hl7`);
  const qbpFile = path.join(work, `${roster.partner}.qbp.hl7`);
  await writeV2Batch(rosterFile, roster, vxuFile, { kind: 'VXU', today });
  await writeV2Batch(rosterFile, roster, qbpFile, { kind: 'QBP', today });

  const flat = await run(rosterFile, flatPipeline);
  const sides = {
    VXU: await run(vxuFile, v2PipelineFor(roster, { vxu: 'add', qbp: 'ignore' })),
    QBP: await run(qbpFile, v2PipelineFor(roster, { vxu: 'ignore', qbp: 'add' })),
  };

  const rows: RosterCells[] = [];
  for await (const row of rosterCells(rosterFile, roster)) rows[row.index] = row;
  expect(flat.results.map((r) => r.index)).toEqual(rows.map((_, i) => i));
  expect(flat.members).toEqual([...new Set(flat.results.filter((r) => r.outcome === 'matched').map((r) => r.patientId!))].sort());

  for (const [kind, v2] of Object.entries(sides) as ['VXU' | 'QBP', Ran][]) {
    expect(v2.results.map((r) => r.index), `${kind}: one result per message, in row order`).toEqual(flat.results.map((r) => r.index));
    const differences: unknown[] = [];
    // The Group each side should end with: the roster's matches, except where a row legitimately differs (below).
    const members = new Set<string>();
    for (const f of flat.results) {
      const m = v2.results[f.index]!;
      const cells = rows[f.index]!;
      const legitimately = legitimateDifference(cells, roster);
      if (legitimately === 'blank record id') {
        // A roster row with a blank record id is invalid (review decisions follow the record id,
        // and there is none), while a message without one is identified by its MSH-10
        // (src/parse/hl7v2.ts) and matched on what else it says. The roster's refusal and the
        // stand-in are checked; whom the message matched joins the Group on the v2 side alone.
        expect(f.outcome).toBe('invalid');
        expect(f.problems?.map((p) => [p.field, p.code])).toContainEqual(['recordId', 'missing']);
        expect(m.recordId).toBe(`msg:${controlIdOf(kind, f.index)}`);
        // Where the record id is also an identifier (identifier.system → hl7v2.recordId.system:
        // Riverside's MRN), the stand-in "msg:<MSH-10>" must not be compared as that identifier:
        // it would disagree with the patient's real MRN and the identifier guard stop the match.
        if (!cells.identifierCells.some((c) => c !== undefined && c.trim() !== '')) {
          const compared = m.candidates.flatMap((c) => c.comparisons).filter((x) => x.field.startsWith('identifier['));
          expect.soft(compared, `${kind} row ${f.index}: a message without identifiers compared on one`).toEqual([]);
        }
      } else if (legitimately === 'hl7 date') {
        // A birth date the roster's formats cannot read but which is an HL7 date (20150804 in a
        // MM/DD/YYYY file): the roster leaves it out of matching; in PID-7 it is what a DTM is,
        // and read. The roster's reading is checked; the v2 side's outcome is its own.
        expect(f.warnings?.map((w) => [w.field, w.code])).toContainEqual(['birthDate', 'unparseable']);
        expect(m.warnings?.some((w) => w.field === 'birthDate') ?? false).toBe(false);
      } else {
        if (f.outcome === 'matched') members.add(f.patientId!);
        // A record id with spaces around it is trimmed on both sides: results, review decisions
        // and the shared-id check must see one id.
        if (m.recordId !== f.recordId) differences.push({ row: f.index, line: f.line, recordId: { roster: f.recordId, [kind]: m.recordId } });
        const a = outcomeOf(f);
        const b = outcomeOf(m);
        if (JSON.stringify(a) !== JSON.stringify(b)) differences.push({ row: f.index, line: f.line, roster: a, [kind]: b, rosterProblems: f.problems, v2Problems: m.problems });
        continue;
      }
      if (m.outcome === 'matched') members.add(m.patientId!);
    }
    expect.soft(differences, `${kind}: rows whose message was matched differently`).toEqual([]);
    expect.soft(v2.members, `${kind}: the Group's members`).toEqual([...members].sort());
  }
  return { ...flat, exempt: rows.filter((r) => legitimateDifference(r, roster) !== undefined).length };
}

describe('the same people sent as a roster, as VXU messages and as QBP messages', () => {
  for (const { partner, file } of ROSTERS) {
    it(`${file}: every row and its message get the same outcome, patient, score and candidates, and the Group the same members`, { timeout: 240_000 }, async () => {
      const flat = await expectSameOutcomes(await loadPartnerPipeline('pipelines', partner), path.resolve('samples/rosters', file));
      // The samples' rows are matched, possible and not found, and the Group fills: the comparison
      // had something to compare. (Their broken birth dates and blank names leave each row
      // something else to match on, so none is invalid.)
      const counts = Object.groupBy(flat.results, (r) => r.outcome);
      for (const o of ['matched', 'possible', 'no_match'] as const) expect(counts[o]?.length ?? 0, o).toBeGreaterThan(0);
      expect(flat.members.length).toBeGreaterThan(0);
      // Every sample row is compared in full: none has a blank record id or an HL7-only date.
      expect(flat.exempt).toBe(0);
    });
  }

  /**
   * What the samples do not have, on rows of the sample index's people: HL7's separators and
   * escape character in names, addresses and ids; cells with spaces around them; a blank record
   * id; a birth date in no agreed format that is a valid HL7 date; a sex written out.
   */
  const SCHOOL_EDGES = [
    '\uFEFFStudent ID,Last Name,First Name,Middle Name,Suffix,Birth Date,Gender,Street Address,City,State,Zip,Guardian Phone,Grade',
    '7000577,Mil^ler,Dom|inic,A&B,,08/04/2015,M,"4920 Clear~Lake St, Apt 39",Champaign,IL,61820,2172227784,6',
    '7000957,Cqalderon\\,Sofi\\F\\,Faith,,03/23/2010,F,4849 Broadway Ct,Quincy,IL,62305,217.535.1253,11',
    ' 7001008 ,  Scott , Jason ,,Jr.,12/04/2008, M ,796 Veterans St Apt 34,Springfield,IL,62702,217-400-1534,12',
    ',Carpenter,Connor,O.,,02/01/2011,M,5561 West Spruce Avenue,Saint Louis,MO,63101,314-339-9372,10',
    '7002443,Miller,Dominic,,,20150804,male,"4920 Clear Lake St, Apt 39",Champaign,IL,61820,,6',
    '7002444,Miller,Dominic,,,2015-08-04,M,,,,,,6',
    '7002445,Miller,Dominic,,,08/04/2015,M,"4920 Clear Lake St, Apt 39",Champaign,IL,61820,217-222-7784 x12,6',
    '7002446,Miller,Dominic,,,13/45/2015,M,"4920 Clear Lake St, Apt 39",Champaign,IL,61820,2172227784,6',
    '7000957,Cqalderon,Sofi,Faith,,03/23/2010,F,4849 Broadway Ct,Quincy,IL,62305,217.535.1253,11',
  ];
  const CLINIC_EDGES = [
    'mrn,first_name,last_name,dob,sex,address,city,state,postal_code,phone',
    '10005208,Ayden,Hernandez,1997-01-24,male,526 E Chatham Ln,Springfield,IL,62703,(217) 206-0338',
    ',Heather,Hamilton,1989-03-24,female,8228 Broadway Ct,Springfield,IL,62704,(217) 315-8467',
    ' 10046624 ,Ava,Smith,2020-11-19,female,4159 Vine Ct,Mattoon,IL,61938,(217) 716-9434',
    '1004^6624,Ava,Smith,2020-11-19,female,4159 Vine Ct,Mattoon,IL,61938,(217) 716-9434',
  ];
  for (const [partner, name, lines] of [
    ['school-district-7', 'edges.csv', SCHOOL_EDGES],
    ['riverside-clinic', 'edges.csv', CLINIC_EDGES],
  ] as const) {
    it(`${partner}'s layout, rows with separators, spaces, a blank record id and odd dates: the same outcomes`, { timeout: 120_000 }, async () => {
      const file = await writeText(path.join(await tempDir(), name), `${lines.join('\r\n')}\r\n`);
      await expectSameOutcomes(await loadPartnerPipeline('pipelines', partner), file);
    });
  }
});
