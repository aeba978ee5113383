/**
 * Deterministic sample data for rostermatch: an IIS population (FHIR Patient and Immunization
 * NDJSON), the three partners' rosters in their own layouts, and ground-truth files that say who
 * each roster row really is. Same seed and options ⇒ byte-identical files.
 */
export { generateSamples, DEFAULT_TODAY } from './generate.ts';
export type { GenerateOptions, GenerateReport } from './generate.ts';
export { ERROR_KINDS, INVALID_KINDS } from './corrupt.ts';
export type { ErrorKind, InvalidKind } from './corrupt.ts';
export { DEFAULT_ROWS, ROSTERS, ROSTER_KEYS } from './rosters.ts';
export type { RosterKey } from './rosters.ts';
