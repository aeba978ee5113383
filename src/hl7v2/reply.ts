/**
 * The replies an IIS sends under the CDC IG for Immunization Messaging (HL7 v2.5.1, Release 1.5,
 * 2018 update): ACK^V04 (profile Z23) to a VXU, RSP^K11 (Z31, Z32, Z33, Z42) to a QBP^Q11, and
 * the FHS/BHS…BTS/FTS envelope around a file of replies. Pure: the caller gives the clock and
 * the control ids. Replies are always written with the IG's encoding characters `|^~\&`; text
 * taken from the request (header fields, the QPD to echo) is carried over from its delimiters.
 */
import { headerSegment, message, raw, repeat, segment, transcode, type Field, type Value } from './encode.ts';
import {
  DEFAULT_DELIMITERS,
  type Delimiters,
  type ErrorLocation,
  type MessageHeader,
  type V2Batch,
  type V2Error,
  type V2Identifier,
  type V2Immunization,
  type V2Query,
  type V2ReplyPatient,
} from './types.ts';

export const HL7_VERSION = '2.5.1';

/** HL7 table 0357 (message error condition codes), the texts ERR-3 carries. */
export const TABLE_0357: Readonly<Record<number, string>> = {
  0: 'Message accepted',
  100: 'Segment sequence error',
  101: 'Required field missing',
  102: 'Data type error',
  103: 'Table value not found',
  200: 'Unsupported message type',
  201: 'Unsupported event code',
  202: 'Unsupported processing id',
  203: 'Unsupported version id',
  204: 'Unknown key identifier',
  205: 'Duplicate key identifier',
  206: 'Application record locked',
  207: 'Application internal error',
};

// ERR-5 (CDC table 0533) is RE in the IG; only these 0357 conditions have a counterpart there.
const TABLE_0533: Readonly<Record<number, readonly [string, string]>> = {
  101: ['7', 'Required data missing'],
  102: ['4', 'Invalid value'],
  103: ['5', 'Table value not found'],
};

/** RXA-9 (CDC table NIP001) texts. */
const NIP001: Readonly<Record<string, string>> = {
  '00': 'New immunization record',
  '01': 'Historical information - source unspecified',
};

const QUERY_NAMES: Readonly<Record<V2Query['name'], string>> = {
  Z34: 'Request Immunization History',
  Z44: 'Request Evaluated History and Forecast',
};

/**
 * ERR-8 of a Z42. The IG puts evaluation in OBX rows after each RXA and the forecast in an RXA
 * with CVX 998 followed by OBX rows; it describes no "not provided" marker, and RSP_K11 allows an
 * NTE only under an OBX. We have neither an evaluation nor a forecast engine, so a Z42 carries the
 * history with no OBX and no 998 RXA, and this ERR with severity I (code 0, message accepted)
 * says why — MSA stays AA, since the query itself was answered.
 */
export const FORECAST_NOT_PROVIDED = 'Immunization history only: this system does not evaluate doses or forecast next doses due';

export type AckCode = 'AA' | 'AE' | 'AR';

/** Who we are, for the header fields a request did not fill (its MSH-5/6, our MSH-3/4). */
export interface Sender {
  application: string;
  facility: string;
}

/** HL7 TS to the second with the zone, as the IG asks of MSH-7; written in UTC so it does not depend on the host. */
export function hl7Timestamp(now: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return (
    `${p(now.getUTCFullYear(), 4)}${p(now.getUTCMonth() + 1)}${p(now.getUTCDate())}` +
    `${p(now.getUTCHours())}${p(now.getUTCMinutes())}${p(now.getUTCSeconds())}+0000`
  );
}

/** A header field of the request (an HD as the sender wrote it), in our delimiters. */
function echoed(value: string | undefined, from: Delimiters): Field {
  return value ? raw(transcode(value, from, DEFAULT_DELIMITERS, 'field')) : undefined;
}

interface HeaderInput {
  request: Partial<MessageHeader>;
  controlId: string;
  now: Date;
  sender?: Sender;
}

function replyHeader(i: HeaderInput, type: Value, profile: string): string {
  const r = i.request;
  const from = r.delimiters ?? DEFAULT_DELIMITERS;
  // A reply must carry a valid processing id; an unreadable or unsupported one falls back to P.
  const processing = r.processingId && ['P', 'T', 'D'].includes(r.processingId) ? r.processingId : 'P';
  return headerSegment('MSH', [
    echoed(r.receivingApplication, from) ?? i.sender?.application,
    echoed(r.receivingFacility, from) ?? i.sender?.facility,
    echoed(r.sendingApplication, from),
    echoed(r.sendingFacility, from),
    hl7Timestamp(i.now),
    '',
    type,
    i.controlId,
    processing,
    HL7_VERSION,
    '',
    '',
    // MSH-15/16: the IG fixes NE/NE on acknowledgements and responses (no ack of an ack).
    'NE',
    'NE',
    '',
    '',
    '',
    '',
    [profile, 'CDCPHINVS'],
  ]);
}

/** ERR-2 (ERL): segment^sequence^field^field repetition^component. */
function errorLocation(l: ErrorLocation): Value {
  const field = l.field ? String(l.field) : '';
  return [l.segment, String(l.sequence ?? 1), field, field ? String(l.repetition ?? 1) : '', l.component ? String(l.component) : ''];
}

/** One ERR: location, 0357 code, severity, 0533 code when one fits, and the user message (ERR-8). */
export function errSegment(e: V2Error): string {
  const app = TABLE_0533[e.code];
  return segment('ERR', [
    '', // ERR-1 is not supported in v2.5.1 (ERR-2 replaces it)
    e.location ? errorLocation(e.location) : undefined,
    [String(e.code), TABLE_0357[e.code] ?? '', 'HL70357'],
    e.severity,
    app ? [app[0], app[1], 'HL70533'] : undefined,
    '',
    '',
    e.message,
  ]);
}

export interface AckInput extends HeaderInput {
  /** AA accepted, AE error in the content, AR rejected. */
  code: AckCode;
  errors: readonly V2Error[];
}

/**
 * ACK (profile Z23) to a VXU: MSH, MSA, one ERR per error. MSH-9.2 is the trigger event of the
 * message acknowledged (V04 for a VXU, and when nothing could be read), as HL7 asks of an ACK.
 */
export function ack(i: AckInput): string {
  const trigger = i.request.triggerEvent || 'V04';
  return message([
    replyHeader(i, ['ACK', trigger, 'ACK'], 'Z23'),
    segment('MSA', [i.code, i.request.controlId ?? '']),
    ...i.errors.map(errSegment),
  ]);
}

/** What a QBP found, which decides the response profile. */
export type RspResult =
  /** One patient matched: Z32 to a Z34, Z42 to a Z44. */
  | { kind: 'found'; patient: V2ReplyPatient }
  /** Lower-confidence candidates: Z31, or Z33 with QAK-2 TM when more than the limit. */
  | { kind: 'candidates'; patients: readonly V2ReplyPatient[] }
  /** Nobody: Z33 with QAK-2 NF. */
  | { kind: 'not-found' }
  /** The query was not answered: Z33, MSA and QAK-2 AE or AR, with its ERR. */
  | { kind: 'refused'; ack: 'AE' | 'AR'; errors: readonly V2Error[] };

export type RspProfile = 'Z31' | 'Z32' | 'Z33' | 'Z42';
export type QueryStatus = 'OK' | 'NF' | 'TM' | 'AE' | 'AR';

export interface RspInput extends HeaderInput {
  /** The query as read: its name picks Z32 or Z42, its tag and name are echoed, RCP-2 limits candidates. */
  query?: Partial<V2Query>;
  /**
   * The request's QPD segment exactly as received (in `request.delimiters`), echoed as QPD; its
   * QPD-1 and QPD-2 also give QAK-3 and QAK-1. Without it QPD is rebuilt from `query`.
   */
  qpd?: string;
  result: RspResult;
  /** Problems that did not stop the answer (severity W or I): ERR rows under MSA AA. */
  warnings?: readonly V2Error[];
  /** Our own cap on a candidate list, on top of RCP-2. @defaultValue no cap */
  maxCandidates?: number;
}

/** The profile, MSA-1, QAK-2 and the PIDs to list, for one query result. */
export function rspOutcome(
  query: Partial<V2Query> | undefined,
  result: RspResult,
  maxCandidates?: number,
): { profile: RspProfile; ack: AckCode; status: QueryStatus; patients: readonly V2ReplyPatient[] } {
  switch (result.kind) {
    case 'found':
      return { profile: query?.name === 'Z44' ? 'Z42' : 'Z32', ack: 'AA', status: 'OK', patients: [result.patient] };
    case 'candidates': {
      const limits = [query?.quantityLimit, maxCandidates].filter((n): n is number => typeof n === 'number' && n >= 0);
      const limit = limits.length > 0 ? Math.min(...limits) : Infinity;
      if (result.patients.length === 0) return { profile: 'Z33', ack: 'AA', status: 'NF', patients: [] };
      // The IG answers too many candidates with an acknowledgement and no person records.
      if (result.patients.length > limit) return { profile: 'Z33', ack: 'AA', status: 'TM', patients: [] };
      return { profile: 'Z31', ack: 'AA', status: 'OK', patients: result.patients };
    }
    case 'not-found':
      return { profile: 'Z33', ack: 'AA', status: 'NF', patients: [] };
    case 'refused':
      return { profile: 'Z33', ack: result.ack, status: result.ack, patients: [] };
  }
}

/** The first QPD of a request's text (segments split by CR, LF or CRLF), as written: the `qpd` to echo. */
export function requestQpd(messageText: string): string | undefined {
  return messageText.split(/\r\n|\r|\n/).find((line) => line.startsWith('QPD'));
}

/** The fields of a segment as written (field separators only; index 1 is field 1). */
function fieldsOf(segmentText: string, d: Delimiters): string[] {
  return segmentText.replace(/[\r\n]+$/, '').split(d.field);
}

/**
 * RSP^K11 to a QBP^Q11: MSH, MSA, ERR…, QAK, QPD, then per patient PID (and for Z32/Z42 an
 * ORC, RXA and RXR per immunization, in the order given).
 */
export function rsp(i: RspInput): string {
  const from = i.request.delimiters ?? DEFAULT_DELIMITERS;
  const out = rspOutcome(i.query, i.result, i.maxCandidates);
  const qpd = i.qpd ? fieldsOf(i.qpd, from) : undefined;
  // QAK-3 echoes QPD-1 as written; when the sender gave no more than the bare name (or left
  // QPD-1 out and the reader took the name from MSH-21), the IG's full CE is written instead.
  const written = qpd?.[1] || i.query?.nameField || '';
  const name = i.query?.name;
  const queryName: Field =
    name && QUERY_NAMES[name] && (written === '' || written === name)
      ? [name, QUERY_NAMES[name], 'CDCPHINVS']
      : written
        ? raw(transcode(written, from, DEFAULT_DELIMITERS, 'field'))
        : undefined;
  const tag: Field = qpd?.[2] !== undefined ? raw(transcode(qpd[2], from, DEFAULT_DELIMITERS, 'field')) : i.query?.tag;

  const errors: V2Error[] = [...(i.result.kind === 'refused' ? i.result.errors : []), ...(i.warnings ?? [])];
  if (out.profile === 'Z42') errors.push({ code: 0, severity: 'I', message: FORECAST_NOT_PROVIDED });

  const history = out.profile === 'Z32' || out.profile === 'Z42';
  const segments = [
    replyHeader(i, ['RSP', 'K11', 'RSP_K11'], out.profile),
    segment('MSA', [out.ack, i.request.controlId ?? '']),
    ...errors.map(errSegment),
    segment('QAK', [tag, out.status, queryName]),
    i.qpd ? transcode(i.qpd.replace(/[\r\n]+$/, ''), from) : segment('QPD', [queryName, tag]),
  ];
  out.patients.forEach((p, n) => {
    segments.push(pidSegment(p, n + 1));
    if (history) for (const im of p.immunizations) segments.push(...immunizationSegments(im));
  });
  return message(segments);
}

function isOid(s: string): boolean {
  return /^[0-2](\.(0|[1-9]\d*))+$/.test(s);
}

/** CX: value^^^authority^type; an OID authority goes in CX-4.2 with CX-4.3 ISO, as the reader takes it back. */
function cx(id: V2Identifier): Value {
  return [id.value, '', '', isOid(id.authority) ? ['', id.authority, 'ISO'] : id.authority, id.type];
}

/** XTN with use PRN and equipment PH; a NANP number in XTN-6/7 as the IG prefers, anything else in XTN-1. */
function xtn(phone: string): Value {
  const digits = phone.replace(/\D/g, '');
  const nanp = digits.length === 11 && digits.startsWith('1') ? digits.slice(1) : digits;
  if (nanp.length === 10) return ['', 'PRN', 'PH', '', '', nanp.slice(0, 3), nanp.slice(3)];
  return [phone, 'PRN', 'PH'];
}

/** One PID of a response. */
export function pidSegment(p: V2ReplyPatient, setId: number): string {
  const n = p.name;
  const a = p.address;
  return segment('PID', [
    String(setId),
    '',
    repeat(p.identifiers.map(cx)),
    '',
    [n.family, n.given, n.middle, n.suffix, '', '', n.type || 'L'],
    p.mothersMaidenName ? [p.mothersMaidenName, '', '', '', '', '', 'M'] : '',
    p.birthDate,
    p.sex,
    '',
    '',
    a ? [a.street, a.street2, a.city, a.state, a.zip, '', a.type] : '',
    '',
    p.phone ? xtn(p.phone) : '',
    '', '', '', '', '', '', '', '', '', '',
    p.multipleBirth,
    p.birthOrder,
  ]);
}

/** ORC, RXA and, when route or site is known, RXR for one immunization of a Z32/Z42. */
export function immunizationSegments(im: V2Immunization): string[] {
  // ORC-3 is required; the IG's placeholder 9999 stands in where the IIS has no id for the record.
  const filler: Value = im.fillerOrder?.id ? [im.fillerOrder.id, im.fillerOrder.authority] : ['9999'];
  const out = [
    segment('ORC', ['RE', '', filler]),
    segment('RXA', [
      '0',
      '1',
      im.date,
      '',
      [im.cvx.code, im.cvx.display, 'CVX'],
      im.amount || '999',
      im.units ? [im.units, '', 'UCUM'] : '',
      '',
      im.informationSource ? [im.informationSource, NIP001[im.informationSource] ?? '', 'NIP001'] : '',
      '', '', '', '', '',
      im.lotNumber,
      '',
      im.manufacturer ? (im.manufacturer.code ? [im.manufacturer.code, im.manufacturer.display, 'MVX'] : ['', im.manufacturer.display]) : '',
      '',
      '',
      im.completionStatus || 'CP',
    ]),
  ];
  if (im.route || im.site) {
    out.push(
      segment('RXR', [
        im.route ? [im.route.code, im.route.display, 'HL70162'] : '',
        im.site ? [im.site.code, im.site.display, 'HL70163'] : '',
      ]),
    );
  }
  return out;
}

export interface ReplyBatchOptions {
  /** The request's BHS: its sender is our receiver and its BHS-11 our BHS-12. */
  header?: V2Batch['batchHeader'];
  now: Date;
  /** Our FHS-11 and BHS-11. */
  controlId: string;
  sender?: Sender;
  /** BTS-2: what was wrong with the request's envelope (a count that disagreed), said where the batch's receiver reads it. */
  comment?: string;
}

/**
 * Replies in a file: FHS, BHS, the messages, BTS (BTS-1 the number of messages), FTS (FTS-1 one
 * batch). The request's batch header is taken as written in the IG's delimiters.
 */
export function replyBatch(replies: readonly string[], o: ReplyBatchOptions): string {
  const h = o.header;
  const from = DEFAULT_DELIMITERS;
  const ts = hl7Timestamp(o.now);
  const ends = [
    echoed(h?.receivingApplication, from) ?? o.sender?.application,
    echoed(h?.receivingFacility, from) ?? o.sender?.facility,
    echoed(h?.sendingApplication, from),
    echoed(h?.sendingFacility, from),
    ts,
  ];
  return message([
    headerSegment('FHS', [...ends, '', '', '', o.controlId]),
    headerSegment('BHS', [...ends, '', '', '', o.controlId, h?.controlId]),
    ...replies.map((r) => r.replace(/[\r\n]+$/, '')),
    segment('BTS', [String(replies.length), o.comment]),
    segment('FTS', ['1']),
  ]);
}
