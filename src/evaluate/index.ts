/**
 * Scoring a run against ground truth (the generator's truth files): how many auto-matches were
 * right, how many were wrong — a wrong one discloses a record — and how many true people were
 * missed or left for review.
 */
import fs from 'node:fs/promises';
import { parse } from 'csv-parse/sync';

export interface TruthRow {
  line: number;
  recordId: string;
  /** '' when the person is not in the index. */
  patientId: string;
}

export interface Accuracy {
  rows: number;
  /** Rows whose person is in the index. */
  inIndex: number;
  matched: number;
  correctMatches: number;
  falseMatches: number;
  /** In-index rows sent to review (possible/ambiguous) with the true patient among the candidates. */
  reviewWithTruth: number;
  precision: number;
  recall: number;
  f1: number;
  falseMatchesPer10k: number;
}

export async function readTruth(file: string): Promise<Map<string, TruthRow>> {
  const rows = parse(await fs.readFile(file), { columns: true, bom: true, skip_empty_lines: true }) as Record<string, string>[];
  return new Map(rows.map((r) => [r.record_id!, { line: Number(r.line), recordId: r.record_id!, patientId: r.patient_id ?? '' }]));
}

export interface ScoredRow {
  recordId: string;
  outcome: string;
  patientId?: string | undefined;
  candidateIds: string[];
}

export function accuracy(results: Iterable<ScoredRow>, truth: Map<string, TruthRow>): Accuracy {
  let rows = 0;
  let inIndex = 0;
  let matched = 0;
  let correct = 0;
  let review = 0;
  for (const r of results) {
    rows++;
    const t = truth.get(r.recordId)?.patientId ?? '';
    if (t !== '') inIndex++;
    if (r.outcome === 'matched') {
      matched++;
      if (r.patientId === t) correct++;
    } else if ((r.outcome === 'possible' || r.outcome === 'ambiguous') && t !== '' && r.candidateIds.includes(t)) review++;
  }
  const precision = matched === 0 ? 1 : correct / matched;
  const recall = inIndex === 0 ? 1 : correct / inIndex;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return {
    rows,
    inIndex,
    matched,
    correctMatches: correct,
    falseMatches: matched - correct,
    reviewWithTruth: review,
    precision,
    recall,
    f1,
    falseMatchesPer10k: rows === 0 ? 0 : ((matched - correct) / rows) * 10_000,
  };
}
