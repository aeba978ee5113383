/**
 * The matching stage: normalised rows in, one classified result per row out, in input order.
 * Candidates come from a CandidateSource (the patient index's blocking table), a chunk of rows at
 * a time, so memory stays bounded by the chunk and not the file.
 */
import type { IndexPatient, NameFrequencies, NormalisedRow, RowResult, ScoredCandidate, StandingDecision } from '../model/index.ts';
import { firstKeys, secondKeys } from './blocking.ts';
import { classify, guardFailure, type Classification, type Scored, type Thresholds } from './classify.ts';
import { RowScorer, type ScoringContext } from './compare.ts';
import type { Levels } from './model.ts';

export { blockingKeys, firstKeys, keepBlock, rowKeys, secondKeys, type RowKeys } from './blocking.ts';
export { CandidateIndex } from './candidate-index.ts';
export { DEFAULT_LEVELS, mergeLevels, weight, type LevelOverrides, type Levels } from './model.ts';
export { classify, guardFailure, type Thresholds } from './classify.ts';
export { compareBirthDate, compareFamily, compareGiven, compareIdentifier, comparePair, type MatchRow } from './compare.ts';

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

/**
 * Matches one chunk of rows. Invalid rows pass through as `invalid` with their problems.
 *
 * Candidates come in two rounds. The first looks up the passes that find a person whose birth
 * date and one name survive (most rows: on a million patients, under three candidates a row);
 * only a row that is not matched on those looks up the wider passes as well, which find a person
 * whose birth date, names or address went wrong together (about five more candidates for each
 * such row, and some thirty more look-ups).
 */
export async function matchChunk(rows: readonly NormalisedRow[], source: CandidateSource, opts: MatchOptions): Promise<RowResult[]> {
  const keys = rows.map((r) => (r.kind === 'valid' ? firstKeys(r) : []));
  const prior = opts.freq.total > 0 ? Math.log2(opts.freq.total) : 0;
  const ctx = opts.levels ? { freq: opts.freq, levels: opts.levels } : { freq: opts.freq };
  const first = await source.byKeys(distinct(keys));
  // Each row's scored candidates by id: the second round adds to the first's.
  const scored = rows.map(() => new Map<string, Scored>());
  const outcome = rows.map((row, i) => (row.kind === 'valid' ? judge(row, keys[i]!, first, scored[i]!, opts, ctx, prior) : undefined));
  const again = rows.flatMap((row, i) => (row.kind === 'valid' && outcome[i]!.outcome !== 'matched' ? [i] : []));
  if (again.length > 0) {
    const more = new Map(again.map((i) => [i, secondKeys(rows[i] as ValidRow, keys[i])]));
    const second = await source.byKeys(distinct(more.values()));
    for (const i of again) outcome[i] = judge(rows[i] as ValidRow, more.get(i)!, second, scored[i]!, opts, ctx, prior);
  }
  return rows.map((row, i) => {
    if (row.kind === 'invalid') {
      const invalid: RowResult = { line: row.line, index: row.index, recordId: row.recordId, outcome: 'invalid', candidates: [], problems: row.problems };
      if (row.action) invalid.action = row.action;
      if (row.message) invalid.message = row.message;
      return invalid;
    }
    const c = outcome[i]!;
    const result: RowResult = {
      line: row.line,
      index: row.index,
      recordId: row.recordId,
      outcome: c.outcome,
      candidates: c.candidates.map(asListed),
    };
    if (c.patientId !== undefined) result.patientId = c.patientId;
    if (c.score !== undefined) result.score = c.score;
    if (row.warnings.length > 0) result.warnings = row.warnings;
    if (c.reviewed) result.reviewed = c.reviewed;
    if (row.action) result.action = row.action;
    if (row.message) result.message = row.message;
    if (c.outcome === 'possible' || c.outcome === 'ambiguous') result.submitted = row.identifiers.length > 0 ? { person: row.person, identifiers: row.identifiers } : { person: row.person };
    return result;
  });
}

type ValidRow = Extract<NormalisedRow, { kind: 'valid' }>;

/** A scored candidate as a result lists it: without the matcher's working (pair, household), with the guard it fails. */
function asListed(s: Scored): ScoredCandidate {
  const guard = guardFailure(s.pair);
  const listed: ScoredCandidate = { patientId: s.patientId, score: s.score, probability: s.probability, comparisons: s.comparisons };
  if (guard) listed.guard = guard;
  if (s.via !== undefined) listed.via = s.via;
  return listed;
}

/** Scores a row's new candidates (those reached by `keys`, besides the ones already in `scored`), adds them to it and classifies the row. */
function judge(
  row: ValidRow,
  keys: readonly string[],
  blocks: Map<string, IndexPatient[]>,
  scored: Map<string, Scored>,
  opts: MatchOptions,
  ctx: ScoringContext,
  prior: number,
): Classification {
  const decision = opts.decisions?.get(row.recordId);
  const rejected = decision?.rejectedIds ?? [];
  let scorer: RowScorer | undefined;
  for (const key of keys) {
    for (const cand of blocks.get(key) ?? []) {
      const id = cand.survivor ?? cand.id;
      if (scored.has(cand.id) || rejected.includes(id) || rejected.includes(cand.id)) continue;
      const pair = (scorer ??= new RowScorer(row, ctx)).compare(cand);
      // The candidate's household is its own person fields (street, phone, names, birth date).
      const s: Scored = { patientId: id, score: pair.score, probability: probability(pair.score, prior), comparisons: pair.comparisons, pair, household: cand.person };
      if (cand.survivor !== undefined) s.via = cand.id;
      scored.set(cand.id, s);
    }
  }
  const list = onePerPerson(scored);
  return honour(decision, list, opts.thresholds) ?? classify(list, opts.thresholds);
}

/**
 * One candidate per person: a survivor and the records merged into it (keyed by their own ids,
 * listed under the survivor's) are one person, never two that make a row ambiguous. The person
 * is judged by whichever of its records the row resembles most among those that pass the guards
 * (a merged record lacking a surname must not hold back the live one that has it) — on a tie,
 * its live record.
 */
function onePerPerson(scored: ReadonlyMap<string, Scored>): Scored[] {
  const best = new Map<string, [string, Scored]>();
  for (const [id, s] of scored) {
    const held = best.get(s.patientId);
    if (held === undefined || better(id, s, held[0], held[1])) best.set(s.patientId, [id, s]);
  }
  return [...best.values()].map(([, s]) => s);
}

/**
 * Of two records of one person, `s` (record `id`) over `held` (record `heldId`): passing the
 * guards, then the higher score, then the live record, then the lower id — never the order the
 * candidate source happened to list them in, so both sources list the same comparisons.
 */
function better(id: string, s: Scored, heldId: string, held: Scored): boolean {
  const fails = guardFailure(s.pair) !== null;
  if (fails !== (guardFailure(held.pair) !== null)) return !fails;
  if (s.score !== held.score) return s.score > held.score;
  if (id === s.patientId || heldId === s.patientId) return id === s.patientId;
  return id < heldId;
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

/** The keys of every row, each once, for one look-up. */
function distinct(lists: Iterable<readonly string[]>): string[] {
  const keys = new Set<string>();
  for (const list of lists) for (const key of list) keys.add(key);
  return [...keys];
}

/** Posterior from the weight sum, taking the prior as one true match among the whole index. */
function probability(score: number, priorBits: number): number {
  return 1 / (1 + 2 ** (priorBits - score));
}
