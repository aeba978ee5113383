/**
 * HL7 v2.5.1 immunization messages (CDC IG Release 1.5) as the rest of rostermatch sees them:
 * typed values read out of VXU and QBP messages, and the typed inputs the ACK and RSP builders
 * take. Everything here is plain data; the syntax (separators, escapes) stays in this folder.
 */

/** The separators a message declares in MSH-1 and MSH-2. */
export interface Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
  /** MSH-2's fifth character (v2.7 truncation), when present; carried, never used. */
  truncation?: string;
}

export const DEFAULT_DELIMITERS: Delimiters = { field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&' };

/** Where an error is (ERR-2, ERL): segment id, its ordinal among segments of that id (from 1), field, component. */
export interface ErrorLocation {
  segment: string;
  sequence?: number;
  field?: number;
  /** The field's repetition (from 1); ERR-2.4 says 1 when a field is named and this is not. */
  repetition?: number;
  component?: number;
}

/**
 * One error or warning for ERR: `code` from HL7 table 0357 (0 accepted, 100 segment sequence
 * error, 101 required field missing, 102 data type error, 103 table value not found, 200
 * unsupported message type, 201 unsupported event code, 202 unsupported processing id, 203
 * unsupported version id, 207 application internal error). `message` is ERR-8: never more
 * personal data than the message itself held, and preferably none.
 */
export interface V2Error {
  code: number;
  severity: 'E' | 'W' | 'I';
  location?: ErrorLocation;
  message: string;
}

/** MSH, read. Empty strings where the message left a field out. */
export interface MessageHeader {
  delimiters: Delimiters;
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  /** MSH-7 as written (HL7 TS). */
  dateTime: string;
  /** MSH-9.1, e.g. VXU, QBP. */
  messageType: string;
  /** MSH-9.2, e.g. V04, Q11. */
  triggerEvent: string;
  /** MSH-9.3, e.g. VXU_V04. */
  structure: string;
  /** MSH-10. */
  controlId: string;
  /** MSH-11.1: P, T or D. */
  processingId: string;
  /** MSH-12.1, e.g. 2.5.1. */
  version: string;
  /** MSH-21 entity identifiers (Z22, Z34, Z44…), each repetition's first component. */
  profiles: string[];
}

/** A CX of PID-3 (or QPD-3): value, assigning authority (CX-4.1, or CX-4.2 when only that is given), identifier type (CX-5). */
export interface V2Identifier {
  value: string;
  authority: string;
  /** MR, SS, MA, PI, SR… or ''. */
  type: string;
}

/** An XPN of PID-5 (or QPD-4): name type code XPN-7 (L legal, A alias, M maiden, '' when not given). */
export interface V2Name {
  family: string;
  given: string;
  middle: string;
  suffix: string;
  type: string;
}

/** An XAD of PID-11 (or QPD-8). */
export interface V2Address {
  street: string;
  street2: string;
  city: string;
  state: string;
  zip: string;
  /** XAD-7: H home, M mailing, L legal… */
  type: string;
}

/** An XTN of PID-13/14 (or QPD-9): the number as written (area code and local number joined, or XTN-1 when only that is filled). */
export interface V2Phone {
  number: string;
  /** XTN-2: PRN, ORN, WPN… */
  use: string;
  /** XTN-3: PH, CP, Internet… */
  equipment: string;
}

/** The demographics of PID, or of QPD-3…QPD-11 for a query. */
export interface V2Person {
  identifiers: V2Identifier[];
  /** Every name repetition in order; the legal one (type L, else the first) is the person's name. */
  names: V2Name[];
  /** PID-6.1 (QPD-5.1): mother's maiden surname. */
  mothersMaidenName: string;
  /** PID-7 (QPD-6) as written (HL7 TS/DTM: YYYY[MM[DD[HHMM…]]]). */
  birthDate: string;
  /** PID-8 (QPD-7): F, M, U… */
  sex: string;
  addresses: V2Address[];
  phones: V2Phone[];
  /** PID-24 (QPD-10): Y, N or ''. */
  multipleBirth: string;
  /** PID-25 (QPD-11): the birth order as written (1, 2…) or ''. */
  birthOrder: string;
}

/** The query of a QBP^Q11: QPD-1 and QPD-2, and RCP-2's quantity limit. */
export interface V2Query {
  /** QPD-1.1: Z34 (complete immunization history) or Z44 (evaluated history and forecast). */
  name: 'Z34' | 'Z44';
  /** QPD-2: the query tag, echoed in QAK-1 and QPD-2 of the response. */
  tag: string;
  /** QPD-1 as written (all components), echoed in the response's QPD. */
  nameField: string;
  /** RCP-2.1, when given: how many candidates a Z31 may list. */
  quantityLimit?: number;
}

export type V2Message =
  | { kind: 'VXU'; header: MessageHeader; person: V2Person; warnings: V2Error[] }
  | { kind: 'QBP'; header: MessageHeader; person: V2Person; query: V2Query; warnings: V2Error[] };

/**
 * One message of a file or a connection, read. A message that cannot be taken (no MSH, a type
 * we do not take, no PID, a required field missing) is `refused`, with what could be read of its
 * header so the ACK can still echo MSH-10, and `ack` says AE (error in the content) or AR
 * (rejected: unreadable, unsupported type, version or processing id).
 */
export type ReadMessage =
  | { ok: true; message: V2Message; line: number }
  | { ok: false; header: Partial<MessageHeader>; errors: V2Error[]; ack: 'AE' | 'AR'; line: number };

/** A file's messages and its batch envelope, checked. */
export interface V2Batch {
  /** `bare`: messages one after another; `batch`: BHS…BTS; `file`: FHS BHS…BTS FTS. */
  envelope: 'bare' | 'batch' | 'file';
  /** Each message's text (segments joined by CR) and the line of its MSH in the file (from 1). */
  messages: { text: string; line: number }[];
  /** BHS, read (for the reply batch's header): sending/receiving app and facility, control id BHS-11. */
  batchHeader?: { sendingApplication: string; sendingFacility: string; receivingApplication: string; receivingFacility: string; controlId: string };
  /** Envelope problems that lose no message: a BTS-1/FTS-1 count that disagrees, a missing BTS. With the line. */
  problems: { line: number; message: string }[];
}

/** An immunization as an RSP's RXA (and RXR) give it. */
export interface V2Immunization {
  /** RXA-3: YYYYMMDD. */
  date: string;
  /** RXA-5: CVX code and its text. */
  cvx: { code: string; display: string };
  /** RXA-6 and RXA-7; `999` with no units when not known. */
  amount: string;
  units: string;
  /** RXA-9.1: 00 new record, 01 historical. */
  informationSource: '00' | '01' | '';
  /** RXA-15. */
  lotNumber: string;
  /** RXA-17: MVX code and its text. */
  manufacturer?: { code: string; display: string };
  /** RXA-20: CP, NA, PA, RE. */
  completionStatus: string;
  /** RXR-1 route and RXR-2 site (HL7 0162/0163 codes), when known. */
  route?: { code: string; display: string };
  site?: { code: string; display: string };
  /** ORC-3 (EI): the IIS's own id of this immunization and its namespace; the IG's `9999` when absent. */
  fillerOrder?: { id: string; authority: string };
}

/** A person as an RSP's PID gives them, with the identifiers to list (the IIS's FHIR Patient id among them). */
export interface V2ReplyPatient {
  identifiers: V2Identifier[];
  name: V2Name;
  mothersMaidenName: string;
  /** YYYYMMDD. */
  birthDate: string;
  sex: string;
  address?: V2Address;
  phone?: string;
  multipleBirth: string;
  birthOrder: string;
  immunizations: V2Immunization[];
}
