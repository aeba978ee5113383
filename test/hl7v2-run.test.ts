/**
 * HL7 v2 partners (issue 13), end to end on a real store: a batch of VXU and QBP messages is one
 * run; each message gets its reply in the reply batch, in order, echoing its MSH-10; matched VXU
 * patients join the Group with the message in its history; a QBP's RSP carries the IIS's FHIR
 * Patient id and immunizations; bad messages are answered and cost nobody else.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { parsePipeline, type Pipeline } from '../src/pipeline/index.ts';
import { runFile } from '../src/run/index.ts';
import { groupHistory, groupMembers, listReviewItems, readRunResults } from '../src/store/index.ts';
import { IMMUNIZATIONS, INDEX } from './fixtures.ts';
import { fhirPatient, quietLog, tempDb, writeNdjson, writeText } from './helpers.ts';
import { msh, qbp, v2PipelineSpec, vxu } from './hl7v2-messages.ts';

const GID = 'test-clinic-v2';

function v2Pipeline(policy?: { vxu: 'add' | 'ignore'; qbp: 'add' | 'ignore' }, extra: Record<string, unknown> = {}): Pipeline {
  return parsePipeline(JSON.stringify(v2PipelineSpec(GID, policy, extra)), 'test-clinic.yaml');
}

const BATCH = [
  'FHS|^~\\&|TESTEHR|TESTCLINIC|IIS|IIS|20261207120000-0500||||F1',
  'BHS|^~\\&|TESTEHR|TESTCLINIC|IIS|IIS|20261207120000-0500||||B1',
  vxu('M1', 'PID|1||r2^^^TESTCLINIC^MR~123-45-6789^^^SSA^SS||Wilson^Liam^^^^^L||20160702|M|||40 Elm Ave^^Springfield^IL^62702^^H||^PRN^PH^^^217^5550200'),
  qbp('M2', 'r1^^^TESTCLINIC^MR|Martinez^Ava^^^^^L||20150314|F|12 Oak St^^Springfield^IL^62701^^H'),
  qbp('M3', 'r7^^^TESTCLINIC^MR|Quintanilla-Ashworth^Zoe^^^^^L||20150101|F', 'Z44'),
  qbp('M4', 'r11^^^TESTCLINIC^MR|Martinez^Avery^^^^^L||20150314|F'),
  [msh('ADT^A01^ADT_A01', 'M5', ''), 'PID|1||r9^^^TESTCLINIC^MR||Doe^Jane||20100101|F'].join('\r'),
  [msh('VXU^V04^VXU_V04', 'M6', 'Z22'), 'ORC|RE||1^TESTEHR'].join('\r'),
  vxu('M7', 'PID|1||r5^^^OTHER^MR||Nunez^Jose^^^^^L||20130203|M', 'OTHERCLINIC'),
  vxu('M8', 'PID|1||r4^^^TESTCLINIC^MR||O\\S\\Brien^Mia^^^^^L||20141130|F'),
  'BTS|8',
  'FTS|1',
].join('\r');

/** The reply batch's messages: MSH-9, MSA-1, MSA-2, and the whole text, by message. */
function replies(text: string): { type: string; ack: string; echo: string; text: string }[] {
  const out: { type: string; ack: string; echo: string; text: string }[] = [];
  for (const seg of text.split('\r')) {
    const f = seg.split('|');
    if (f[0] === 'MSH') out.push({ type: f[8]!, ack: '', echo: '', text: seg });
    else if (out.length > 0 && !['BTS', 'FTS'].includes(f[0]!)) {
      const m = out.at(-1)!;
      m.text += `\r${seg}`;
      if (f[0] === 'MSA') [m.ack, m.echo] = [f[1]!, f[2] ?? ''];
    }
  }
  return out;
}

async function setup(pipeline: Pipeline) {
  const { db, dir } = await tempDb('pglite');
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'Patient.ndjson'), INDEX));
  await loadIndexFile(db, await writeNdjson(path.join(dir, 'Immunization.ndjson'), IMMUNIZATIONS));
  const out = path.join(dir, 'out');
  const file = await writeText(path.join(dir, 'batch-001.hl7'), BATCH);
  const run = await runFile(db, quietLog, { file, pipeline, outDir: out, exportsDir: path.join(dir, 'ex') });
  return { db, out, run };
}

describe('an HL7 v2 batch file', () => {
  it('answers every message in order, puts matched VXU patients in the Group with the message id, and carries the FHIR id in the RSP', async () => {
    const { db, out, run } = await setup(v2Pipeline());
    expect(run.kind).toBe('completed');
    const text = await fs.readFile(path.join(out, 'batch-001.replies.hl7'), 'utf8');
    const r = replies(text);
    expect(r.map((x) => [x.type, x.ack, x.echo])).toEqual([
      ['ACK^V04^ACK', 'AA', 'M1'],
      ['RSP^K11^RSP_K11', 'AA', 'M2'],
      ['RSP^K11^RSP_K11', 'AA', 'M3'],
      ['RSP^K11^RSP_K11', 'AA', 'M4'],
      ['ACK^A01^ACK', 'AR', 'M5'],
      ['ACK^V04^ACK', 'AE', 'M6'],
      ['ACK^V04^ACK', 'AR', 'M7'],
      ['ACK^V04^ACK', 'AA', 'M8'],
    ]);
    expect(text).toMatch(/^FHS\|/);
    expect(text).toContain('BHS|^~\\&|IIS|IIS|TESTEHR|TESTCLINIC|');
    expect(text).toMatch(/\rBTS\|8\rFTS\|1\r?$/);
    // M2: Ava found (Z32), her FHIR id among PID-3, her two immunizations as RXA.
    const m2 = r[1]!.text;
    expect(m2).toContain('|Z32^CDCPHINVS');
    expect(m2).toMatch(/\rQAK\|M2-Q\|OK\|/);
    expect(m2).toMatch(/\rPID\|1\|\|p-ava\^\^\^IIS-FHIR\^PI/);
    expect(m2.match(/\rRXA\|/g)).toHaveLength(2);
    // M3: nobody (Z33, NF); M4: Avery is only possibly Ava (Z31: her id, no other numbers).
    expect(r[2]!.text).toMatch(/\|Z33\^CDCPHINVS[\s\S]*\rQAK\|M3-Q\|NF\|/);
    expect(r[3]!.text).toContain('|Z31^CDCPHINVS');
    expect(r[3]!.text).toMatch(/\rPID\|1\|\|p-ava\^\^\^IIS-FHIR\^PI\|/);
    expect(r[3]!.text).not.toContain('RXA');
    // M5 unsupported type, M6 no PID, M7 another facility: each refused with its reason and place.
    expect(r[4]!.text).toMatch(/\rERR\|\|MSH\^1\^9[^|]*\|200\^/);
    expect(r[5]!.text).toMatch(/\rERR\|\|PID\^1[^|]*\|100\^/);
    expect(r[6]!.text).toMatch(/\rERR\|\|MSH\^1\^4[^|]*\|103\^/);
    // VXU policy add: Liam and Mia join, by their messages; QBP policy ignore: Ava does not.
    expect((await groupMembers(db, GID)).map((m) => m.patientId)).toEqual(['p-liam', 'p-mia']);
    const history = await groupHistory(db, GID);
    expect(history.map((e) => [e.patientId, e.ref]).sort()).toEqual([['p-liam', 'M1'], ['p-mia', 'M8']]);
    // A possible row of a message whose policy is ignore waits for nobody.
    expect(await listReviewItems(db, {})).toEqual([]);
    const results = await fs.readFile(path.join(out, 'batch-001.results.csv'), 'utf8');
    expect(results.split('\r\n').filter(Boolean)).toHaveLength(9);
  });

  it('answers a batch with a wrong count, a truncated MSH and a wrong field separator message by message, losing none', async () => {
    const { db, dir } = await tempDb('pglite');
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'Patient.ndjson'), INDEX));
    const bad = [
      'BHS|^~\\&|TESTEHR|TESTCLINIC|IIS|IIS|20261207120000-0500||||B2',
      'MSH|^~\\&|TESTEHR|TESTCLINIC',
      'MSH#^~\\&#TESTEHR#TESTCLINIC#IIS#IIS#20261207120000-0500##VXU^V04^VXU_V04#M11#P#2.5.1',
      'PID|1||r2^^^TESTCLINIC^MR||Wilson^Liam^^^^^L||20160702|M',
      vxu('M12', 'PID|1||r2^^^TESTCLINIC^MR||Wilson^Liam^^^^^L||20160702|M|||40 Elm Ave^^Springfield^IL^62702^^H'),
      'BTS|5',
    ].join('\r\n');
    const out = path.join(dir, 'out');
    const file = await writeText(path.join(dir, 'bad.hl7'), bad);
    const run = await runFile(db, quietLog, { file, pipeline: v2Pipeline(), outDir: out, exportsDir: path.join(dir, 'ex') });
    expect(run.kind).toBe('completed');
    const text = await fs.readFile(path.join(out, 'bad.replies.hl7'), 'utf8');
    const r = replies(text);
    expect(r.map((x) => [x.ack, x.echo])).toEqual([['AR', ''], ['AE', 'M11'], ['AA', 'M12']]);
    expect(r[0]!.text).toMatch(/\rERR\|\|MSH\^1\^9[^|]*\|101\^/);
    expect(r[1]!.text).toMatch(/\rERR\|\|PID\^1[^|]*\|100\^/);
    expect(text).toMatch(/\rBTS\|3\|[^\r]*BTS-1 says 5/);
    expect((await groupMembers(db, GID)).map((m) => m.patientId)).toEqual(['p-liam']);
  });

  it('tells twins apart by PID-24/25 and PID-6, as a roster with those columns would', async () => {
    const { db, dir } = await tempDb('pglite');
    const twin = (id: string, given: string, order: number) => ({
      ...fhirPatient({ id, given, family: 'Okafor', birthDate: '2019-06-09', street: '77 Lake Shore Dr', zip: '62704' }),
      multipleBirthInteger: order,
      extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName', valueString: 'Eze' }],
    });
    await loadIndexFile(db, await writeNdjson(path.join(dir, 'Patient.ndjson'), [twin('p-isabel', 'Isabel', 1), twin('p-isabella', 'Isabella', 2)]));
    const pid = (id: string, order: string) => `PID|1||${id}^^^TESTCLINIC^MR||Okafor^Isabel^^^^^L|Eze^^^^^^M|20190609|F|||77 Lake Shore Dr^^Springfield^IL^62704^^H|${'|'.repeat(12)}Y|${order}`;
    const file = await writeText(path.join(dir, 'twins.hl7'), [vxu('T1', pid('t1', '2')), vxu('T2', pid('t2', ''))].join('\r'));
    const run = await runFile(db, quietLog, { file, pipeline: v2Pipeline(), outDir: path.join(dir, 'out'), exportsDir: path.join(dir, 'ex') });
    if (run.kind !== 'completed') throw new Error('expected a completed run');
    const rows = await readRunResults(db, run.run.id);
    // Keyed ISABEL but born second: Isabella, never her sister; without the order, the name decides.
    expect(rows.map((r) => [r.recordId, r.outcome, r.patientId])).toEqual([['t1', 'matched', 'p-isabella'], ['t2', 'matched', 'p-isabel']]);
    expect(rows[0]!.candidates[0]!.comparisons.map((c) => c.field)).toEqual(expect.arrayContaining(['birthOrder', 'mothersMaiden']));
  });

  it('with qbp: add, a matched query joins the Group (its RSP can name the Group) and a possible one goes to review', async () => {
    const { db, out } = await setup(v2Pipeline({ vxu: 'ignore', qbp: 'add' }, { groupIdInResponse: true }));
    expect((await groupMembers(db, GID)).map((m) => m.patientId)).toEqual(['p-ava']);
    // Seed 000's option: the Group id as a non-unique identifier beside the FHIR Patient id.
    const m2 = replies(await fs.readFile(path.join(out, 'batch-001.replies.hl7'), 'utf8'))[1]!.text;
    expect(m2).toMatch(/\rPID\|1\|\|p-ava\^\^\^IIS-FHIR\^PI~[^|]*test-clinic-v2\^\^\^FHIR-GROUP\^PT\|/);
    expect((await groupHistory(db, GID)).map((e) => e.ref)).toEqual(['M2']);
    expect((await listReviewItems(db, {})).map((i) => i.recordId)).toEqual(['r11']);
  });
});
