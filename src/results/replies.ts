/**
 * The HL7 v2 partner's outputs (issue 13): one reply per message, in the order received — an
 * ACK^V04 (Z23) to each VXU, an RSP^K11 to each QBP — built from the run's recorded rows, so
 * writing them again after a crash gives the same bytes. A matched QBP's RSP carries the person
 * as the IIS holds them, with the IIS's FHIR Patient id as an extra PID-3 identifier (seed 000).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ack, replyBatch, rsp, type RspResult, type Sender } from '../hl7v2/reply.ts';
import { replyPatient, US_SSN, type FhirImmunizationJson, type FhirPatientJson } from '../hl7v2/from-fhir.ts';
import type { V2Error, V2Identifier } from '../hl7v2/types.ts';
import type { LogicalField, RowProblem, RowResult } from '../model/index.ts';
import type { Pipeline } from '../pipeline/index.ts';
import { patientRecords, streamRunResults, type PatientRecord, type Queryable } from '../store/index.ts';

/** Who answers, where a request left its MSH-5/6 blank. */
export const REPLY_SENDER: Sender = { application: 'ROSTERMATCH', facility: 'IIS' };

/** The reply batch file's name beside the result file: `<name>.replies.hl7`. */
export function repliesName(inputFile: string): string {
  const base = path.basename(inputFile).replace(/\.[^.]*$/, '') || path.basename(inputFile);
  return `${base}.replies.hl7`;
}

export interface ReplyContext {
  runId: string;
  pipeline: Pipeline;
  /** When the run finished: every reply's MSH-7, so the same run always gives the same replies. */
  at: Date;
}

/**
 * Writes every reply of the run, in row order, as one batch file (FHS BHS … BTS FTS) under a
 * temporary name, then renames it. The first row carries the request's envelope (its BHS and
 * what was wrong with it), which the reply batch answers.
 */
export async function writeRepliesFile(db: Queryable, dir: string, inputFile: string, c: ReplyContext): Promise<string> {
  const replies: string[] = [];
  let batchHeader: NonNullable<RowResult['message']>['batch'];
  for await (const page of streamRunResults(db, c.runId)) {
    if (replies.length === 0) batchHeader = page[0]?.message?.batch;
    const records = await recordsFor(db, page);
    for (const r of page) replies.push(replyTo(r, records, c));
  }
  const comment = batchHeader?.problems.map((p) => `line ${p.line}: ${p.message}`).join('; ');
  const text = replyBatch(replies, { header: batchHeader?.header, now: c.at, controlId: controlIdOf(c.runId, 'B'), sender: REPLY_SENDER, ...(comment ? { comment } : {}) });
  await fs.mkdir(dir, { recursive: true });
  const final = path.join(dir, repliesName(inputFile));
  const tmp = `${final}.tmp-${process.pid}`;
  await fs.writeFile(tmp, text.endsWith('\r') ? text : `${text}\r`);
  await fs.rename(tmp, final);
  return final;
}

/** Our MSH-10 for a reply: the run and the row, so it is unique and the same when written again. */
function controlIdOf(runId: string, suffix: string | number): string {
  return `RM${runId.replaceAll('-', '').slice(0, 16)}${typeof suffix === 'number' ? `-${suffix + 1}` : suffix}`;
}

/** The patients a page's QBP replies list: a matched row's with their immunizations, candidates' without. */
async function recordsFor(db: Queryable, page: readonly RowResult[]): Promise<Map<string, PatientRecord>> {
  const matched = new Set<string>();
  const candidates = new Set<string>();
  for (const r of page) {
    if (r.message?.type !== 'QBP' || r.message.refused) continue;
    if (r.outcome === 'matched' && r.patientId) matched.add(r.patientId);
    else if (r.outcome === 'possible' || r.outcome === 'ambiguous') for (const c of r.candidates) candidates.add(c.patientId);
  }
  const out = await patientRecords(db, [...matched], { immunizations: true });
  for (const [id, rec] of await patientRecords(db, [...candidates].filter((id) => !matched.has(id)), { immunizations: false })) out.set(id, rec);
  return out;
}

function replyTo(r: RowResult, records: Map<string, PatientRecord>, c: ReplyContext): string {
  const m = r.message;
  const header = { request: m?.header ?? {}, controlId: controlIdOf(c.runId, r.index), now: c.at, sender: REPLY_SENDER };
  if (!m) return ack({ ...header, code: 'AR', errors: [{ code: 207, severity: 'E', message: 'the message could not be read' }] });
  const isQuery = m.type === 'QBP';
  const problems = m.refused ? m.errors : [...m.errors, ...rowErrors(r, isQuery)];
  if (!isQuery) {
    const code = m.refused ?? (r.outcome === 'invalid' ? 'AE' : 'AA');
    return ack({ ...header, code, errors: problems });
  }
  const result = queryResult(r, records, c.pipeline, problems);
  const warnings = result.kind === 'refused' ? [] : problems;
  return rsp({ ...header, ...(m.query ? { query: m.query, qpd: m.query.qpd } : {}), result, warnings });
}

/** What a QBP's row found, as the RSP profiles tell it (Z32/Z42 found, Z31 candidates, Z33 none or refused). */
function queryResult(r: RowResult, records: Map<string, PatientRecord>, pipeline: Pipeline, problems: V2Error[]): RspResult {
  const spec = pipeline.hl7v2!;
  if (r.message?.refused) return { kind: 'refused', ack: r.message.refused, errors: problems };
  switch (r.outcome) {
    case 'invalid':
      return { kind: 'refused', ack: 'AE', errors: problems };
    case 'matched': {
      const rec = r.patientId ? records.get(r.patientId) : undefined;
      // Merged away or removed since the match: nobody to hand out.
      if (!rec) return { kind: 'not-found' };
      const extra: V2Identifier[] = spec.groupIdInResponse && r.message?.joins ? [{ value: pipeline.group.id, authority: 'FHIR-GROUP', type: 'PT' }] : [];
      return { kind: 'found', patient: replyPatient(rec.resource as FhirPatientJson, rec.immunizations as FhirImmunizationJson[], { fhirId: r.patientId!, fhirIdAuthority: spec.patientIdAuthority, extra, identifierTypes: identifierTypes(pipeline) }) };
    }
    case 'possible':
    case 'ambiguous': {
      const patients = r.candidates.flatMap((cand) => {
        const rec = records.get(cand.patientId);
        if (!rec) return [];
        // A candidate is not yet known to be the requester's patient: only the IIS's id, none of their numbers (an SSN above all).
        const p = replyPatient(rec.resource as FhirPatientJson, [], { fhirId: cand.patientId, fhirIdAuthority: spec.patientIdAuthority });
        return [{ ...p, identifiers: p.identifiers.filter((i) => i.type === 'PI' && i.value === cand.patientId) }];
      });
      return { kind: 'candidates', patients };
    }
    default:
      return { kind: 'not-found' };
  }
}

/**
 * CX-5 of the identifiers the index holds without a type, by system: what the partner's own
 * rules say the system is (its MR system, SS, MA…), and SS for the US SSN system.
 */
function identifierTypes(pipeline: Pipeline): Record<string, string> {
  const spec = pipeline.hl7v2!;
  const types: Record<string, string> = { [US_SSN]: 'SS' };
  for (const r of spec.identifiers) types[r.system] = r.type;
  if (spec.recordId.system) types[spec.recordId.system] = spec.recordId.type;
  return types;
}

/**
 * A row's problems (invalid) and warnings as ERR rows: where in PID (a query's QPD) the field
 * is, 101 for a field that is missing, 102 for one that cannot be used. The messages are the
 * result file's, which name fields, never their values.
 */
function rowErrors(r: RowResult, query: boolean): V2Error[] {
  const at = (p: RowProblem, severity: 'E' | 'W'): V2Error => {
    const [segment, field] = query ? ['QPD', QPD_FIELD[p.field]] : ['PID', PID_FIELD[p.field]];
    const missing = p.code === 'missing' || p.code === 'no_name';
    return { code: missing ? 101 : 102, severity, location: { segment, sequence: 1, ...(field ? { field } : {}) }, message: p.message };
  };
  return [...(r.problems ?? []).map((p) => at(p, 'E')), ...(r.warnings ?? []).map((p) => at(p, 'W'))];
}

const PID_FIELD: Partial<Record<LogicalField, number>> = {
  recordId: 3, identifier: 3, given: 5, family: 5, middle: 5, suffix: 5, fullName: 5,
  birthDate: 7, sex: 8, street: 11, street2: 11, city: 11, state: 11, zip: 11, phone: 13,
};
const QPD_FIELD: Partial<Record<LogicalField, number>> = {
  recordId: 3, identifier: 3, given: 4, family: 4, middle: 4, suffix: 4, fullName: 4,
  birthDate: 6, sex: 7, street: 8, street2: 8, city: 8, state: 8, zip: 8, phone: 9,
};
