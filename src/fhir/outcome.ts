/** FHIR's way of saying what went wrong: an OperationOutcome, and the error that carries one. */

export type IssueCode = 'invalid' | 'not-found' | 'not-supported' | 'security' | 'login' | 'forbidden' | 'throttled' | 'exception' | 'processing' | 'deleted' | 'informational' | 'business-rule' | 'multiple-matches' | 'required' | 'transient' | 'structure';

export function operationOutcome(code: IssueCode, diagnostics: string, severity: 'error' | 'warning' | 'information' = 'error', expression?: string) {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics, ...(expression ? { expression: [expression] } : {}) }] };
}

/** An answer the FHIR surface gives as its HTTP status with an OperationOutcome body. */
export class FhirError extends Error {
  readonly status: number;
  readonly code: IssueCode;
  readonly headers: Record<string, string>;
  /** The element at fault, as a FHIRPath expression (OperationOutcome.issue.expression), when one is. */
  readonly expression: string | undefined;

  constructor(status: number, code: IssueCode, diagnostics: string, headers: Record<string, string> = {}, expression?: string) {
    super(diagnostics);
    this.name = 'FhirError';
    this.status = status;
    this.code = code;
    this.headers = headers;
    this.expression = expression;
  }
}

/** A Group that does not exist and one of another partner are the same answer. */
export const groupNotFound = (id: string) => new FhirError(404, 'not-found', `Group/${id} is not known`);
