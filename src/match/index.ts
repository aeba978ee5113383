/**
 * The matching stage: normalised rows in, one classified result per row out, in input order.
 * Candidates come from a CandidateSource (the patient index's blocking table), a chunk of rows at
 * a time, so memory stays bounded by the chunk and not the file.
 */
import type { IndexPatient, NameFrequencies, NormalisedRow, RowResult, StandingDecision } from '../model/index.ts';
import { blockingKeys } from './blocking.ts';
import { classify, guardFailure, type Classification, type Scored, type Thresholds } from './classify.ts';
import { comparePair, type MatchRow } from './compare.ts';
import type { Levels } from './model.ts';

export { blockingKeys } from './blocking.ts';
export { CandidateIndex } from './candidate-index.ts';
export { DEFAULT_LEVELS, mergeLevels, weight, type LevelOverrides, type Levels } from './model.ts';
export { classify, guardFailure, type Thresholds } from './classify.ts';
export { compareBirthDate, compareFamily, compareGiven, compareIdentifier, comparePair, type MatchRow } from './compare.ts';

/** The blocking keys a roster row is looked up by (the same function keys index patients). */
export function rowKeys(row: MatchRow): string[] {
  return blockingKeys(row.person, row.identifiers, row.placeholder);
}

export interface CandidateSource {
  /** Every index patient reachable by each key. */
  byKeys(keys: string[]): Promise<Map<string, IndexPatient[]>> | Map<string, IndexPatient[]>;
}

export interface MatchOptions {
  thresholds: Thresholds;
  freq: NameFrequencies;
  /** People's standing decisions on this partner's records, by record id. */
  decisions?: ReadonlyMap<string, StandingDecision>;
  /** m and u per level. @defaultValue DEFAULT_LEVELS */
  levels?: Levels;
}

/** Matches one chunk of rows. Invalid rows pass through as `invalid` with their problems. */
export async function matchChunk(rows: readonly NormalisedRow[], source: CandidateSource, opts: MatchOptions): Promise<RowResult[]> {
  const keysByRow = rows.map((r) => (r.kind === 'valid' ? rowKeys(r) : []));
  const blocks = await source.byKeys([...new Set(keysByRow.flat())]);
  const prior = opts.freq.total > 0 ? Math.log2(opts.freq.total) : 0;
  return rows.map((row, i) => {
    if (row.kind === 'invalid') {
      return { line: row.line, index: row.index, recordId: row.recordId, outcome: 'invalid', candidates: [], problems: row.problems };
    }
    const decision = opts.decisions?.get(row.recordId);
    const candidates = new Map<string, IndexPatient>();
    for (const key of keysByRow[i]!) for (const p of blocks.get(key) ?? []) candidates.set(p.id, p);
    for (const id of decision?.rejectedIds ?? []) candidates.delete(id);
    const scored: Scored[] = [];
    for (const cand of candidates.values()) {
      const pair = comparePair(row, cand, opts.levels ? { freq: opts.freq, levels: opts.levels } : { freq: opts.freq });
      scored.push({
        patientId: cand.id,
        score: pair.score,
        probability: probability(pair.score, prior),
        comparisons: pair.comparisons,
        pair,
        household: { street: cand.person.street, phone: cand.person.phone, given: cand.person.given, family: cand.person.family, birthDate: cand.person.birthDate },
      });
    }
    const c = honour(decision, scored, opts.thresholds) ?? classify(scored, opts.thresholds);
    const result: RowResult = {
      line: row.line,
      index: row.index,
      recordId: row.recordId,
      outcome: c.outcome,
      candidates: c.candidates.map(({ pair, household: _household, ...rest }) => {
        const guard = guardFailure(pair);
        return guard ? { ...rest, guard } : rest;
      }),
    };
    if (c.patientId !== undefined) result.patientId = c.patientId;
    if (c.score !== undefined) result.score = c.score;
    if (row.warnings.length > 0) result.warnings = row.warnings;
    if (c.reviewed) result.reviewed = c.reviewed;
    if (c.outcome === 'possible' || c.outcome === 'ambiguous') result.submitted = row.identifiers.length > 0 ? { person: row.person, identifiers: row.identifiers } : { person: row.person };
    return result;
  });
}

/**
 * A person accepted a patient for this record before: it is matched again — provided that
 * patient is still among the candidates and still scores as a possible match, so a record id
 * reused for someone else, or demographics changed past recognition, go back to a person.
 */
function honour(decision: StandingDecision | undefined, scored: Scored[], t: Thresholds): Classification | undefined {
  if (decision?.decision !== 'accepted') return undefined;
  const chosen = scored.find((s) => s.patientId === decision.patientId);
  if (!chosen || chosen.score < t.possible) return undefined;
  return { outcome: 'matched', patientId: chosen.patientId, score: chosen.score, candidates: [chosen], reviewed: { by: decision.decidedBy, at: decision.decidedAt } };
}

/** Posterior from the weight sum, taking the prior as one true match among the whole index. */
function probability(score: number, priorBits: number): number {
  return 1 / (1 + 2 ** (priorBits - score));
}
