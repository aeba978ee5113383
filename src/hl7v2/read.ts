/**
 * One VXU^V04 (Z22) or QBP^Q11 (Z34, Z44) message read into the typed values of types.ts, or
 * refused with the HL7 table 0357 codes and locations its ACK will carry. The rule for what
 * refuses: a message we cannot take or cannot match on (wrong type, no PID, neither a name nor an
 * identifier) is refused; a flaw that still lets us match (no birth date) is a warning, because
 * refusing it would lose a person the IIS may well know. Bad input never throws.
 */
import { component, field, parseMessage, repetitions, segmentsOf, V2SyntaxError, value, type ParsedMessage, type Segment } from './parse.ts';
import type { Delimiters, ErrorLocation, MessageHeader, ReadMessage, V2Address, V2Error, V2Identifier, V2Name, V2Person, V2Phone, V2Query } from './types.ts';

const err = (code: number, severity: V2Error['severity'], location: ErrorLocation | undefined, message: string): V2Error => ({
  code,
  severity,
  ...(location ? { location } : {}),
  message,
});
const at = (segment: string, f?: number, c?: number): ErrorLocation => ({
  segment,
  sequence: 1,
  ...(f !== undefined ? { field: f } : {}),
  ...(c !== undefined ? { component: c } : {}),
});

/** CX-4 (an HD): its namespace id, or its universal id when only that is given. */
const authority = (d: Delimiters, rep: string) => component(d, rep, 4, 1) || component(d, rep, 4, 2);

function readHeader(msg: ParsedMessage): MessageHeader {
  const d = msg.delimiters;
  const msh = msg.segments[0];
  // MSH-3…6 stay as written (in `d`): the ACK echoes the whole HD, universal id included.
  return {
    delimiters: d,
    sendingApplication: field(msh, 3),
    sendingFacility: field(msh, 4),
    receivingApplication: field(msh, 5),
    receivingFacility: field(msh, 6),
    dateTime: value(d, msh, 7),
    messageType: value(d, msh, 9, 1),
    triggerEvent: value(d, msh, 9, 2),
    structure: value(d, msh, 9, 3),
    controlId: value(d, msh, 10),
    processingId: value(d, msh, 11),
    version: value(d, msh, 12),
    profiles: repetitions(d, field(msh, 21)).map((r) => component(d, r, 1)).filter((p) => p !== ''),
  };
}

/** The reasons, all AR, that a header stops a message before its content is looked at. */
function headerErrors(h: MessageHeader): V2Error[] {
  const missing = ([[9, h.messageType], [10, h.controlId], [11, h.processingId], [12, h.version]] as const)
    .filter(([, v]) => v === '')
    .map(([n]) => err(101, 'E', at('MSH', n), `MSH-${n} is required and missing`));
  if (missing.length > 0) return missing;
  const errors: V2Error[] = [];
  const expected = TYPES[h.messageType];
  if (!expected) errors.push(err(200, 'E', at('MSH', 9, 1), 'only VXU and QBP messages are accepted'));
  else if (h.triggerEvent !== expected.event) errors.push(err(201, 'E', at('MSH', 9, 2), `${h.messageType} is accepted with event ${expected.event} only`));
  else if (h.structure !== '' && h.structure !== expected.structure) errors.push(err(201, 'E', at('MSH', 9, 3), `${h.messageType} is accepted with structure ${expected.structure} only`));
  if (!['P', 'T', 'D'].includes(h.processingId)) errors.push(err(202, 'E', at('MSH', 11), 'MSH-11 must be P, T or D'));
  if (!/^2\.5(\.\d+)?$/.test(h.version)) errors.push(err(203, 'E', at('MSH', 12), 'only version 2.5.1 is accepted'));
  return errors;
}

const TYPES: Record<string, { event: string; structure: string } | undefined> = {
  VXU: { event: 'V04', structure: 'VXU_V04' },
  QBP: { event: 'Q11', structure: 'QBP_Q11' },
};

/** Where a person's demographics sit: PID and a Z34/Z44 QPD use different field numbers for the same things. */
interface PersonFields {
  identifiers: number;
  names: number;
  mothersMaidenName: number;
  birthDate: number;
  sex: number;
  addresses: number;
  phones: number[];
  multipleBirth: number;
  birthOrder: number;
}
const PID: PersonFields = { identifiers: 3, names: 5, mothersMaidenName: 6, birthDate: 7, sex: 8, addresses: 11, phones: [13, 14], multipleBirth: 24, birthOrder: 25 };
const QPD: PersonFields = { identifiers: 3, names: 4, mothersMaidenName: 5, birthDate: 6, sex: 7, addresses: 8, phones: [9], multipleBirth: 10, birthOrder: 11 };

const filled = (o: object) => Object.entries(o).some(([k, v]) => k !== 'type' && k !== 'use' && k !== 'equipment' && v !== '');

function readPerson(d: Delimiters, seg: Segment, at: PersonFields): V2Person {
  const reps = (n: number) => repetitions(d, field(seg, n));
  const identifiers: V2Identifier[] = reps(at.identifiers)
    .map((r) => ({ value: component(d, r, 1), authority: authority(d, r), type: component(d, r, 5) }))
    .filter((i) => i.value !== '');
  const names: V2Name[] = reps(at.names)
    .map((r) => ({ family: component(d, r, 1), given: component(d, r, 2), middle: component(d, r, 3), suffix: component(d, r, 4), type: component(d, r, 7) }))
    .filter(filled);
  const addresses: V2Address[] = reps(at.addresses)
    .map((r) => ({ street: component(d, r, 1), street2: component(d, r, 2), city: component(d, r, 3), state: component(d, r, 4), zip: component(d, r, 5), type: component(d, r, 7) }))
    .filter(filled);
  const phones: V2Phone[] = at.phones
    .flatMap(reps)
    .map((r) => ({ number: component(d, r, 6) + component(d, r, 7) || component(d, r, 1), use: component(d, r, 2), equipment: component(d, r, 3) }))
    // An e-mail address is not a phone, and the IG puts it in the same field.
    .filter((p) => p.number !== '' && p.use !== 'NET' && p.equipment !== 'Internet' && p.equipment !== 'X.400');
  return {
    identifiers,
    names,
    mothersMaidenName: value(d, seg, at.mothersMaidenName, 1, 1),
    birthDate: value(d, seg, at.birthDate),
    sex: value(d, seg, at.sex),
    addresses,
    phones,
    multipleBirth: value(d, seg, at.multipleBirth),
    birthOrder: value(d, seg, at.birthOrder),
  };
}

/** HL7 DTM to any precision (YYYY[MM[DD[HH[MM[SS[.S]]]]]][±ZZZZ]) naming a real calendar day. */
export function isHl7Date(s: string): boolean {
  const m = /^(\d{4})(?:(\d{2})(?:(\d{2})(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,4})?)?)?)?)?)?(?:[+-]\d{4})?$/.exec(s);
  if (!m) return false;
  const [y, mo = 1, day = 1] = m.slice(1, 4).map((x) => (x === undefined ? undefined : Number(x))) as [number, number?, number?];
  const date = new Date(Date.UTC(y, mo - 1, day));
  return date.getUTCMonth() === mo - 1 && date.getUTCDate() === day;
}

/**
 * What a person's own fields say about the message: errors (E) when we could not match at all,
 * warnings (W) when a required or coded field is wrong but matching can still go on. The text
 * names fields, never their values.
 */
function personErrors(p: V2Person, id: string, at: PersonFields, identifiersRequired: boolean): V2Error[] {
  const loc = (n: number) => ({ segment: id, sequence: 1, field: n });
  const out: V2Error[] = [];
  if (p.names.length === 0 && p.identifiers.length === 0) {
    out.push(err(101, 'E', loc(at.names), `neither ${id}-${at.identifiers} nor ${id}-${at.names} is given: nothing to match on`));
  } else {
    if (p.names.length === 0) out.push(err(101, 'W', loc(at.names), `${id}-${at.names} is required and missing`));
    if (identifiersRequired && p.identifiers.length === 0) out.push(err(101, 'W', loc(at.identifiers), `${id}-${at.identifiers} is required and missing`));
  }
  if (p.birthDate === '') out.push(err(101, 'W', loc(at.birthDate), `${id}-${at.birthDate} is required and missing`));
  else if (!isHl7Date(p.birthDate)) out.push(err(102, 'W', loc(at.birthDate), `${id}-${at.birthDate} is not a date`));
  if (!['', 'Y', 'N'].includes(p.multipleBirth)) out.push(err(103, 'W', loc(at.multipleBirth), `${id}-${at.multipleBirth} must be Y or N`));
  if (p.birthOrder !== '' && !/^[1-9]\d*$/.test(p.birthOrder)) out.push(err(102, 'W', loc(at.birthOrder), `${id}-${at.birthOrder} is not a birth order`));
  return out;
}

/** Lines the parser could not see a segment id on: most often the separator MSH-1 declared is not the one used. */
function strayLines(msg: ParsedMessage): V2Error[] {
  return msg.segments.flatMap((s, i) =>
    /^[A-Z][A-Z0-9]{2}$/.test(s.id) ? [] : [err(100, 'W', undefined, `segment ${i + 1} does not begin with a segment id followed by the field separator MSH-1 declares`)],
  );
}

const isError = (e: V2Error) => e.severity === 'E';
const isQueryName = (n: string): n is 'Z34' | 'Z44' => n === 'Z34' || n === 'Z44';

export function readMessage(text: string, line: number): ReadMessage {
  let msg: ParsedMessage;
  try {
    msg = parseMessage(text);
  } catch (e) {
    if (!(e instanceof V2SyntaxError)) throw e;
    return { ok: false, header: {}, errors: [err(e.code, 'E', at('MSH', e.field), e.message)], ack: 'AR', line };
  }
  const header = readHeader(msg);
  const refused = headerErrors(header);
  if (refused.length > 0) return { ok: false, header, errors: refused, ack: 'AR', line };

  const d = msg.delimiters;
  const found = strayLines(msg);
  const refuse = (...more: V2Error[]): ReadMessage => ({ ok: false, header, errors: [...found, ...more], ack: 'AE', line });

  if (header.messageType === 'VXU') {
    const pid = segmentsOf(msg, 'PID')[0];
    if (!pid) return refuse(err(100, 'E', { segment: 'PID' }, 'the message has no PID segment'));
    const person = readPerson(d, pid, PID);
    found.push(...personErrors(person, 'PID', PID, true));
    if (found.some(isError)) return refuse();
    return { ok: true, message: { kind: 'VXU', header, person, warnings: found }, line };
  }

  const qpd = segmentsOf(msg, 'QPD')[0];
  if (!qpd) return refuse(err(100, 'E', { segment: 'QPD' }, 'the message has no QPD segment'));
  // QPD-1 names the query; MSH-21 is the fallback when a sender left QPD-1 out.
  const written = value(d, qpd, 1);
  const name = written || header.profiles.find(isQueryName) || '';
  if (written === '') found.push(err(101, name ? 'W' : 'E', at('QPD', 1), 'QPD-1 is required and missing'));
  else if (!isQueryName(name)) found.push(err(103, 'E', at('QPD', 1), 'QPD-1 must be Z34 or Z44'));
  const tag = value(d, qpd, 2);
  if (tag === '') found.push(err(101, 'E', at('QPD', 2), 'QPD-2 (query tag) is required and missing'));
  const person = readPerson(d, qpd, QPD);
  found.push(...personErrors(person, 'QPD', QPD, false));
  const limit = value(d, segmentsOf(msg, 'RCP')[0], 2);
  if (limit !== '' && !/^\d+$/.test(limit)) found.push(err(102, 'W', at('RCP', 2), 'RCP-2 is not a whole number'));
  if (found.some(isError) || !isQueryName(name)) return refuse();
  const query: V2Query = {
    name,
    tag,
    nameField: written ? field(qpd, 1) : name,
    ...(/^\d+$/.test(limit) ? { quantityLimit: Number(limit) } : {}),
  };
  return { ok: true, message: { kind: 'QBP', header, person, query, warnings: found }, line };
}
