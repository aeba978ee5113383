/** Trained match models, one per partner pipeline. */
import type { Queryable } from './db.ts';

export interface TrainedModel {
  partner: string;
  /** LevelOverrides: { field: { level: { m, u } } }. */
  levels: Record<string, Record<string, { m?: number; u?: number }>>;
  lambda: number;
  blockedPairs: number;
  randomPairs: number;
  trainedAt: string;
}

export async function saveTrainedModel(db: Queryable, m: TrainedModel): Promise<void> {
  await db.query(
    `INSERT INTO match_model (partner, levels, lambda, blocked_pairs, random_pairs, trained_at) VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (partner) DO UPDATE SET levels = excluded.levels, lambda = excluded.lambda, blocked_pairs = excluded.blocked_pairs,
       random_pairs = excluded.random_pairs, trained_at = excluded.trained_at`,
    [m.partner, JSON.stringify(m.levels), m.lambda, m.blockedPairs, m.randomPairs, m.trainedAt],
  );
}

export async function trainedModel(db: Queryable, partner: string): Promise<TrainedModel | undefined> {
  const { rows } = await db.query<{ partner: string; levels: TrainedModel['levels']; lambda: number; blocked_pairs: number; random_pairs: number; trained_at: Date }>(
    'SELECT * FROM match_model WHERE partner = $1',
    [partner],
  );
  const r = rows[0];
  return r && { partner: r.partner, levels: r.levels, lambda: r.lambda, blockedPairs: r.blocked_pairs, randomPairs: r.random_pairs, trainedAt: r.trained_at.toISOString() };
}
