/**
 * The typed data that flows between pipeline stages. Every stage takes and returns these shapes,
 * so a stage can be tested alone and run inline or as a queued job without change.
 */
import type { MessageHeader, V2Batch, V2Error, V2Query } from '../hl7v2/types.ts';

/** FHIR administrative gender, or '' when the source did not say. */
export type Sex = 'male' | 'female' | 'other' | 'unknown' | '';

/**
 * One person's demographics after normalisation. Names are upper-case ASCII letters and single
 * spaces (diacritics folded, punctuation dropped, hyphens turned into spaces); '' means absent.
 */
export interface PersonFields {
  given: string;
  middle: string;
  family: string;
  /** JR, SR, II, III, IV or ''. */
  suffix: string;
  /** ISO YYYY-MM-DD or ''. */
  birthDate: string;
  sex: Sex;
  /** Street line with USPS abbreviations, e.g. "12 N OAK ST APT 4". */
  street: string;
  city: string;
  /** Two-letter state code. */
  state: string;
  /** Five digits. */
  zip: string;
  /** Ten digits (NANP, no leading 1). */
  phone: string;
  /**
   * Mother's maiden name, folded as a family name is. Optional, and left out rather than '' when
   * absent, so that sources without it (most rosters) give the results they gave before.
   */
  mothersMaiden?: string;
  /** Birth order within a multiple birth, '1'…'9'; left out when absent (a singleton, or not said). */
  birthOrder?: string;
}

export interface Identifier {
  system: string;
  value: string;
}

/** An identifier a roster row carries, as the pipeline reads it. */
export interface RowIdentifier extends Identifier {
  /** Its name in reasons, e.g. "us-ssn" in identifier[us-ssn]:agree. */
  label: string;
  /**
   * How the value was read: `ssn` compares with the index's values read as SSNs too, `ssn-last4`
   * with the last four digits of them. @defaultValue generic
   */
  kind?: 'ssn' | 'ssn-last4';
}

/** A patient of the IIS as the matcher sees it. */
export interface IndexPatient {
  id: string;
  person: PersonFields;
  identifiers: Identifier[];
  /** Set when the patient was merged into another (PIXm replaced-by): the patient its link names. */
  replacedBy?: string;
  /**
   * Set on a candidate that was merged away: the live patient a match to it names — its survivor,
   * along any chain of merges. Its demographics are still compared, so a partner's row that
   * matches the old ones finds the survivor (src/match/index.ts keeps one candidate per person).
   */
  survivor?: string;
}

/** One data row of a partner file, keyed by the pipeline's logical field names. */
export interface RawRow {
  /** 1-based line number of the row in the file (the header is line 1). */
  line: number;
  /** 0-based position among data rows, which is the order of the result file. */
  index: number;
  /** The partner's own record id, echoed back in the result file. */
  recordId: string;
  fields: Partial<Record<LogicalField, string>>;
  /** The cell of each of the pipeline's `identifiers`, in their order (undefined when the file has no such column). */
  identifierCells?: (string | undefined)[];
}

/**
 * What a row asks of the partner's Group (issue 12, removal by file): join it, or leave it. Set
 * only on rows of a file that can remove — a `remove` pipeline (every row `remove`) or one with an
 * action column; the rows of `replace` and plain `append` files carry none.
 */
export type RowAction = 'add' | 'remove';

export const LOGICAL_FIELDS = [
  'recordId',
  'given',
  'middle',
  'family',
  'suffix',
  'fullName',
  'birthDate',
  'sex',
  'street',
  'street2',
  'city',
  'state',
  'zip',
  'phone',
  /** Mother's maiden name (HL7 v2 PID-6), a comparison field that tells families apart. */
  'mothersMaidenName',
  /** Birth order within a multiple birth, 1–9 (PID-25): tells twins apart. */
  'birthOrder',
  'identifier',
  /** Per row, add or remove (see RowAction); only with `group.mode: append`. */
  'action',
] as const;
export type LogicalField = (typeof LOGICAL_FIELDS)[number];

/** A roster row ready to be matched, or the reason it cannot be. */
export type NormalisedRow =
  | {
      kind: 'valid';
      line: number;
      index: number;
      recordId: string;
      person: PersonFields;
      identifiers: RowIdentifier[];
      /** Name parts that are placeholders (BABY BOY, UNKNOWN): no evidence, and no auto-match. */
      placeholder?: { given: boolean; family: boolean };
      warnings: RowProblem[];
      /** What the row asks of the Group, when the file can remove (see RowAction). */
      action?: RowAction;
      message?: RowMessage;
    }
  | { kind: 'invalid'; line: number; index: number; recordId: string; problems: RowProblem[]; action?: RowAction; message?: RowMessage };

export interface RowProblem {
  field: LogicalField;
  code: string;
  message: string;
}

export type Outcome = 'matched' | 'ambiguous' | 'possible' | 'no_match' | 'invalid';
export const OUTCOMES: readonly Outcome[] = ['matched', 'ambiguous', 'possible', 'no_match', 'invalid'];

/** How one field of a row compared with one candidate. */
export interface FieldComparison {
  field: string;
  /** Comparison level label, e.g. "exact", "jw>=0.92", "nickname", "missing". */
  level: string;
  /** log2 Bayes factor this level contributes. */
  weight: number;
}

export interface ScoredCandidate {
  patientId: string;
  /** Total match weight (sum of field weights plus the prior), in log2 odds. */
  score: number;
  /** Posterior probability that the pair is the same person. */
  probability: number;
  comparisons: FieldComparison[];
  /** Set when an identity guard kept this candidate from an auto-match (e.g. "birth_date"). */
  guard?: string;
  /**
   * Set when the comparisons were made against a record merged into this patient (its id): the
   * row resembles that record's old demographics more than the patient's own.
   */
  via?: string;
}

/** The classified result of one roster row. */
export interface RowResult {
  line: number;
  index: number;
  recordId: string;
  outcome: Outcome;
  /** Set for `matched`. */
  patientId?: string;
  /** Best score, when any candidate was scored. */
  score?: number;
  /** The best candidates, best first (all above the possible threshold for possible/ambiguous). */
  candidates: ScoredCandidate[];
  /** For `invalid`: what was wrong. */
  problems?: RowProblem[];
  /** Fields that were present but unusable and so were left out of matching (e.g. a 7-digit phone). */
  warnings?: RowProblem[];
  /** Set when the outcome follows a person's earlier review decision on this record. */
  reviewed?: { by: string; at: string };
  /** The row as normalised, kept only for rows a person must review (possible, ambiguous), to show beside the candidates. */
  submitted?: { person: PersonFields; identifiers?: RowIdentifier[] };
  /** What the row asks of the Group, when the file can remove: a matched `remove` row takes its patient out. */
  action?: RowAction;
  /** The HL7 v2 message the row was read from (issue 13). */
  message?: RowMessage;
}

/**
 * The HL7 v2 message a row came from (issue 13): what its reply needs, and whether a match puts
 * the person in the partner's Group (the pipeline's policy for VXU and QBP, seed 001).
 */
export interface RowMessage {
  /** '' for a message refused before its type could be read. */
  type: 'VXU' | 'QBP' | '';
  /** MSH-10, echoed in MSA-2 and kept in the Group's history. */
  controlId: string;
  /** False when the pipeline's policy for this message type is `ignore`. */
  joins: boolean;
  /** The request's header as read (what the reply's MSH and MSA echo). */
  header: Partial<MessageHeader>;
  /** A QBP's query, and its QPD segment as received (the RSP echoes it). */
  query?: V2Query & { qpd: string };
  /** Warnings for the reply's ERR segments (severity W), and for a refused message its ACK code and errors. */
  errors: V2Error[];
  refused?: 'AE' | 'AR';
  /** On a batch file's first row only: its BHS (the reply batch answers it) and what was wrong with the envelope. */
  batch?: { header?: NonNullable<V2Batch['batchHeader']>; problems: V2Batch['problems'] };
}

/** How often each given and family name occurs in the index, for term-frequency-adjusted weights. */
export interface NameFrequencies {
  total: number;
  given: Map<string, number>;
  family: Map<string, number>;
}

/** What a person decided about one partner record, honoured when the record comes again. */
export interface StandingDecision {
  decision: 'accepted' | 'rejected';
  /** The accepted patient. */
  patientId: string | null;
  /** Candidates a person said are not this record's person. */
  rejectedIds: string[];
  decidedBy: string;
  decidedAt: string;
}
