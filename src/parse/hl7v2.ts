/**
 * Parse + normalise for HL7 v2 partners (issue 13): a file of VXU and QBP messages — bare, or in
 * BHS/FHS batches — in, one row per message out, in file order. Each message's PID (a query's
 * QPD) becomes the same raw fields a roster row has and goes through the same normaliseRow, so a
 * person gets the same outcome whichever way their demographics arrive. A message that cannot be
 * taken becomes an `invalid` row carrying its refusal (for its ACK or RSP): one bad message never
 * costs the others.
 */
import { readBatch } from '../hl7v2/batch.ts';
import { readMessage } from '../hl7v2/read.ts';
import type { ReadMessage, V2Error, V2Identifier, V2Message, V2Person } from '../hl7v2/types.ts';
import type { LogicalField, RawRow, RowMessage, RowProblem } from '../model/index.ts';
import type { Hl7v2Spec, Pipeline } from '../pipeline/index.ts';
import { RostermatchError } from '../errors/index.ts';
import { openText } from '../intake/index.ts';

/** One message of the file, read: the raw row for normaliseRow (absent when refused) and what its reply needs. */
export interface MessageRow {
  raw: RawRow;
  message: RowMessage;
  /** Set when the message was refused: the row's problems. */
  problems?: RowProblem[];
}

/**
 * Every message of the file as a MessageRow. The whole file is read at once: batch counts are
 * checked against the whole envelope before any row is matched.
 */
export async function messageRows(file: string, pipeline: Pipeline, label: string): Promise<MessageRow[]> {
  const spec = hl7v2Of(pipeline);
  const batch = readBatch(await readAll(file, pipeline, label));
  if (batch.messages.length === 0) {
    const where = batch.problems[0]?.line ?? 1;
    throw new RostermatchError('FILE_NO_ROWS', 'no HL7 v2 message: no MSH segment', { file: label, line: where });
  }
  const rows = batch.messages.map((m, index) => messageRow(readMessage(m.text, m.line), m.text, index, spec));
  // The envelope's findings and header ride on the first row: its reply batch answers them.
  const first = rows[0]!.message;
  if (batch.batchHeader) first.batch = { header: batch.batchHeader, problems: batch.problems };
  else if (batch.problems.length > 0) first.batch = { problems: batch.problems };
  return rows;
}

async function readAll(file: string, pipeline: Pipeline, label: string): Promise<string> {
  let text = '';
  for await (const chunk of openText(file, pipeline.file.encoding, label)) text += chunk as string;
  return text;
}

function hl7v2Of(pipeline: Pipeline): Hl7v2Spec {
  if (!pipeline.hl7v2) throw new Error(`pipeline ${pipeline.partner} has format hl7v2 but no hl7v2 settings`);
  return pipeline.hl7v2;
}

/** One read message as a row: refused (invalid, with its errors), or the raw fields of its PID/QPD. */
export function messageRow(read: ReadMessage, text: string, index: number, spec: Hl7v2Spec): MessageRow {
  if (!read.ok) return refusedRow(read.line, index, read.header, read.errors, read.ack);
  const m = read.message;
  // Another facility's message in this partner's folder is never matched for this partner.
  if (firstComponent(m.header.sendingFacility, m.header.delimiters.component) !== spec.sendingFacility) {
    return refusedRow(read.line, index, m.header, [{ code: 103, severity: 'E', location: { segment: 'MSH', sequence: 1, field: 4 }, message: "MSH-4 is not this partner's sending facility" }], 'AR');
  }
  const message: RowMessage = {
    type: m.kind,
    controlId: m.header.controlId,
    joins: (m.kind === 'VXU' ? spec.vxu : spec.qbp) === 'add',
    header: m.header,
    errors: m.warnings,
  };
  if (m.kind === 'QBP') message.query = { ...m.query, qpd: segmentText(text, 'QPD', m.header.delimiters.field) };
  return { raw: rawRow(m, read.line, index, spec), message };
}

function refusedRow(line: number, index: number, header: ReadMessageHeader, errors: V2Error[], ack: 'AE' | 'AR'): MessageRow {
  const type = header.messageType === 'VXU' || header.messageType === 'QBP' ? header.messageType : '';
  const message: RowMessage = { type, controlId: header.controlId ?? '', joins: false, header, errors, refused: ack };
  const problems = errors.filter((e) => e.severity === 'E').map((e) => ({ field: fieldAt(e), code: `hl7_${e.code}`, message: `${where(e)}${e.message}` }));
  return { raw: { line, index, recordId: '', fields: {} }, message, problems };
}

type ReadMessageHeader = Extract<ReadMessage, { ok: false }>['header'];

/** The logical field an error is about, for the result file (PID-7 is the birth date…). */
function fieldAt(e: V2Error): LogicalField {
  const l = e.location;
  if (!l) return 'recordId';
  const at = `${l.segment}-${l.field ?? ''}`;
  return FIELD_AT[at] ?? 'recordId';
}

const FIELD_AT: Record<string, LogicalField> = {
  'PID-3': 'identifier',
  'QPD-3': 'identifier',
  'PID-5': 'given',
  'QPD-4': 'given',
  'PID-7': 'birthDate',
  'QPD-6': 'birthDate',
  'PID-8': 'sex',
  'QPD-7': 'sex',
  'PID-11': 'street',
  'QPD-8': 'street',
  'PID-13': 'phone',
  'QPD-9': 'phone',
};

function where(e: V2Error): string {
  const l = e.location;
  if (!l) return '';
  return `${l.segment}${l.field ? `-${l.field}` : ''}${l.component ? `.${l.component}` : ''}: `;
}

/** PID (or QPD) as the fields of a roster row, unnormalised: normaliseRow does the rest. */
function rawRow(m: V2Message, line: number, index: number, spec: Hl7v2Spec): RawRow {
  const p = m.person;
  const name = p.names.find((n) => n.type === 'L') ?? p.names[0];
  const address = p.addresses.find((a) => a.type === 'H') ?? p.addresses.find((a) => a.type === 'L') ?? p.addresses[0];
  const phone = p.phones.find((x) => x.use === 'PRN') ?? p.phones[0];
  const fields: RawRow['fields'] = {
    given: name?.given ?? '',
    middle: name?.middle ?? '',
    family: name?.family ?? '',
    suffix: name?.suffix ?? '',
    birthDate: isoDate(p.birthDate),
    sex: p.sex,
    street: address?.street ?? '',
    street2: address?.street2 ?? '',
    city: address?.city ?? '',
    state: address?.state ?? '',
    zip: address?.zip ?? '',
    phone: phone?.number ?? '',
    mothersMaidenName: p.mothersMaidenName,
    // PID-24 N says a single birth, whatever PID-25 holds.
    birthOrder: p.multipleBirth === 'N' ? '' : p.birthOrder,
  };
  // Trimmed as a roster's record id cell is, so both ways of sending a person give one record id.
  const recordId = (identifierOf(p, spec.recordId)?.value ?? '').trim();
  // A message without the partner's own record id still identifies its person: MSH-10 stands in.
  const raw: RawRow = { line, index, recordId: recordId || `${STAND_IN}${m.header.controlId}`, fields };
  // Blank, not absent, when a message lacks one: a roster's missing column is news, a message's missing identifier is not.
  raw.identifierCells = spec.identifiers.map((rule) => identifierOf(p, rule)?.value ?? '');
  return raw;
}

/** The prefix of a record id that is no identifier of the partner's but the message's MSH-10. */
const STAND_IN = 'msg:';

function identifierOf(p: V2Person, rule: { type: string; authority?: string | undefined }): V2Identifier | undefined {
  return p.identifiers.find((i) => i.type === rule.type && (rule.authority === undefined || i.authority === rule.authority) && i.value !== '');
}

/** HL7 DTM (YYYYMMDD[HHMM…]) as YYYY-MM-DD; anything else as written, for normaliseRow to judge and say. */
function isoDate(ts: string): string {
  const d = /^(\d{4})(\d{2})(\d{2})(?:\d{0,6}(?:\.\d{1,4})?)?(?:[+-]\d{4})?$/.exec(ts);
  return d ? `${d[1]}-${d[2]}-${d[3]}` : ts;
}

function firstComponent(field: string, separator: string): string {
  const i = field.indexOf(separator);
  return i < 0 ? field : field.slice(0, i);
}

/** A segment of a message's text as received (the RSP echoes the query's QPD), '' when absent. */
function segmentText(message: string, id: string, fieldSeparator: string): string {
  return message.split(/\r\n|\r|\n/).find((s) => s.startsWith(id + fieldSeparator)) ?? '';
}

/**
 * The pipeline normaliseRow sees for a message: PID's fields are fixed, dates ISO (isoDate), and
 * the hl7v2 identifier rules stand where a roster's identifier columns would. The record id is
 * matched as an identifier (hl7v2.recordId.system) only when it is one: MSH-10 standing in for a
 * missing MR is no MRN, and compared as one it would disagree with the person's real MRN.
 */
export function rowPipeline(pipeline: Pipeline, raw: RawRow): Pipeline {
  let pair = asRows.get(pipeline);
  if (!pair) {
    const spec = hl7v2Of(pipeline);
    const base: Pipeline = {
      ...pipeline,
      dates: { birthDate: ['YYYY-MM-DD'] },
      identifiers: spec.identifiers.map((r) => ({ columns: [`PID-3 ${r.type}`], system: r.system, kind: r.kind, ...(r.name ? { name: r.name } : {}) })),
    };
    pair = { standIn: base, own: spec.recordId.system ? { ...base, identifier: { system: spec.recordId.system } } : base };
    asRows.set(pipeline, pair);
  }
  return raw.recordId.startsWith(STAND_IN) ? pair.standIn : pair.own;
}

const asRows = new WeakMap<Pipeline, { standIn: Pipeline; own: Pipeline }>();

