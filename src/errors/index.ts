/**
 * The catalogue of errors partners and operators see. Each has a stable code (it appears in
 * rejection notes, summaries and logs) and carries where it happened: file, line, field.
 * Messages never quote a cell's value: the value may be a name or a birth date.
 */

export const ERROR_CODES = {
  FILE_UNREADABLE: 'the file cannot be read',
  FILE_EMPTY: 'the file has no header row',
  FILE_ENCODING: 'the file is not in the encoding its pipeline declares',
  FILE_MALFORMED_CSV: 'the file is not well-formed delimited text',
  FILE_MISSING_COLUMN: 'a required column is missing from the header',
  FILE_DUPLICATE_COLUMN: 'two header cells map to the same field',
  FILE_NO_ROWS: 'the file has a header but no data rows',
  FILE_CHANGED: 'the file changed after it was taken: the upload was still in progress',
  FILE_DUPLICATE_RECORD_ID: 'a record id appears on more than one row',
  FILE_CONTROL_CHARACTER: 'a cell holds a NUL byte',
  PIPELINE_NOT_FOUND: 'no pipeline file for this partner',
  PIPELINE_INVALID: 'the pipeline file is not valid',
  INDEX_LINE_INVALID: 'a line of the patient index file is not a valid resource',
  GROUP_NOT_FOUND: 'no such Group',
  GROUP_NOT_YOURS: 'the Group belongs to another partner',
  GROUP_DEFINED: 'the Group is defined by characteristics: its members are not changed one by one',
  RUN_NOT_HELD: 'the run is not waiting for an operator to confirm its Group change',
  RUN_HOLD_STALE: 'the Group changed after the run was held; it is held again with new numbers',
  REVIEW_INVALID: 'the review decision cannot be applied',
  MATCH_INCOMPLETE: 'some rows could not be matched after retries',
  RUN_NOT_FOUND: 'a queued job names a run its store does not hold',
  EXPORT_INVALID_REQUEST: 'the export request is not valid',
  OPERATORS_INVALID: 'the operators file is not valid',
  USAGE: 'the command was called wrongly',
  STORE_BUSY: 'the embedded store is open in another process',
  FEED_MULTIPLE_MATCHES: 'several Patients hold the identifier the identity feed names',
  FEED_INVALID: 'the identity feed sent a Patient that cannot be used',
  FEED_SURVIVOR_UNKNOWN: "a merge's replaced-by link names no live Patient",
} as const;
export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorLocation {
  file?: string;
  line?: number;
  field?: string;
}

/** An error with a stable code and a location, safe to show a partner. */
export class RostermatchError extends Error {
  readonly code: ErrorCode;
  readonly location: ErrorLocation;
  /**
   * What the partner's note says, when it must say less than the operator sees (another
   * partner's id, say). @defaultValue the message
   */
  readonly partnerMessage: string;

  constructor(code: ErrorCode, detail: string, location: ErrorLocation = {}, options?: { cause?: unknown; partnerDetail?: string }) {
    super(formatMessage(code, detail, location), options);
    this.name = 'RostermatchError';
    this.code = code;
    this.location = location;
    this.partnerMessage = options?.partnerDetail === undefined ? this.message : formatMessage(code, options.partnerDetail, location);
  }
}

function formatMessage(code: ErrorCode, detail: string, loc: ErrorLocation): string {
  const where = [loc.file, loc.line === undefined ? undefined : `line ${loc.line}`, loc.field && `field "${loc.field}"`]
    .filter(Boolean)
    .join(', ');
  return `${code}: ${detail}${where ? ` (${where})` : ''}`;
}

export function isRostermatchError(e: unknown): e is RostermatchError {
  return e instanceof RostermatchError;
}
