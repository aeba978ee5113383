/**
 * Fellegi–Sunter parameters: for each field, comparison levels with m (how often the level is
 * seen when the pair IS the same person) and u (how often when it is NOT). A level's weight is
 * log2(m/u): positive evidence for, negative against. Defaults are set from experience with
 * registry data; exact name agreement uses term frequencies from the index instead of a fixed u,
 * so a shared rare surname counts for more than a shared SMITH.
 */

export interface Level {
  m: number;
  u: number;
}

export const DEFAULT_LEVELS = {
  given: {
    exact: { m: 0.88, u: 0.01 },
    nickname: { m: 0.04, u: 0.002 },
    typo: { m: 0.04, u: 0.002 },
    token: { m: 0.01, u: 0.002 },
    middle_as_given: { m: 0.005, u: 0.001 },
    prefix: { m: 0.005, u: 0.002 },
    phonetic: { m: 0.01, u: 0.01 },
    initial: { m: 0.003, u: 0.03 },
    different: { m: 0.012, u: 0.955 },
  },
  family: {
    exact: { m: 0.86, u: 0.005 },
    compound: { m: 0.04, u: 0.0005 },
    typo: { m: 0.04, u: 0.001 },
    phonetic: { m: 0.01, u: 0.005 },
    different: { m: 0.05, u: 0.9885 },
  },
  birthDate: {
    exact: { m: 0.93, u: 0.0002 },
    day_month_swap: { m: 0.01, u: 0.0001 },
    typo: { m: 0.04, u: 0.004 },
    different: { m: 0.02, u: 0.9957 },
  },
  middle: {
    agree: { m: 0.75, u: 0.08 },
    different: { m: 0.25, u: 0.92 },
  },
  suffix: {
    conflict: { m: 0.005, u: 0.2 },
  },
  sex: {
    agree: { m: 0.96, u: 0.5 },
    different: { m: 0.04, u: 0.5 },
  },
  zip: {
    agree: { m: 0.75, u: 0.02 },
    different: { m: 0.25, u: 0.98 },
  },
  street: {
    exact: { m: 0.55, u: 0.001 },
    similar: { m: 0.1, u: 0.002 },
    different: { m: 0.35, u: 0.997 },
  },
  phone: {
    agree: { m: 0.5, u: 0.0005 },
    different: { m: 0.5, u: 0.9995 },
  },
  // Mother's maiden name (issue 13): a surname, agreeing about as rarely by chance as one, but
  // shared by every sibling, so among the candidates a row finds (same surname, birth date or
  // address) agreement by chance is commoner than in the population: u 0.01 where the family
  // name's is 0.005 (6.3 bits, not 7.4). Sources often key it differently (the mother's married
  // name, another spelling, a compound one), so a disagreement weighs only moderately against
  // (−3 bits). It tells one family from another, not one twin from the other (classify counts it
  // with the household).
  mothersMaiden: {
    exact: { m: 0.8, u: 0.01 },
    typo: { m: 0.08, u: 0.002 },
    different: { m: 0.12, u: 0.988 },
  },
  // Birth order within a multiple birth (issue 13), compared only when both sides name one, that
  // is between people both recorded as multiples: a random pair of them agrees about half the
  // time (most are twins), so agreement is weak evidence (+1 bit); the same person is given two
  // orders only by a keying slip, while a co-twin always differs, so a disagreement is strong
  // evidence against (−5.6 bits), and classify never auto-matches across it.
  birthOrder: {
    agree: { m: 0.99, u: 0.5 },
    different: { m: 0.01, u: 0.5 },
  },
  // An identifier both sides hold rarely differs for one person (a slip lands on `typo`), and a
  // different value is how parent and child, or twins, with otherwise equal demographics show.
  identifier: {
    agree: { m: 0.95, u: 0.000001 },
    last4: { m: 0.95, u: 0.0001 },
    typo: { m: 0.03, u: 0.0001 },
    different: { m: 0.01, u: 0.9999 },
  },
} as const satisfies Record<string, Record<string, Level>>;

export type FieldName = keyof typeof DEFAULT_LEVELS;

/** A complete model: m and u for every level of every field. */
export type Levels = { [F in FieldName]: { [L in keyof (typeof DEFAULT_LEVELS)[F]]: Level } };

/** Partial m/u overrides, as a pipeline file or a trained model gives them. */
export type LevelOverrides = { [F in FieldName]?: { [L in keyof (typeof DEFAULT_LEVELS)[F]]?: Partial<Level> } };

/** Defaults, then each set of overrides in turn (later wins), level by level. */
export function mergeLevels(...overrides: (LevelOverrides | undefined)[]): Levels {
  const out = structuredClone(DEFAULT_LEVELS) as unknown as Record<string, Record<string, Level>>;
  for (const o of overrides) {
    for (const [field, levels] of Object.entries(o ?? {})) {
      for (const [level, mu] of Object.entries(levels ?? {})) {
        const target = out[field]?.[level];
        if (target) Object.assign(target, mu);
      }
    }
  }
  return out as unknown as Levels;
}

export function weight(level: Level): number {
  return Math.log2(level.m / level.u);
}

/** Every level's weight, field by field: what a comparison adds up. */
export type LevelWeights = { [F in FieldName]: { [L in keyof (typeof DEFAULT_LEVELS)[F]]: number } };

// A model is read by every comparison and never changed once built (mergeLevels makes a new one),
// so its weights are worked out once per model instead of two logarithms a field a pair.
const weightsOf = new WeakMap<Levels, LevelWeights>();

/** The weights of a model's levels, as weight() gives them, computed once per model. */
export function levelWeights(levels: Levels): LevelWeights {
  let w = weightsOf.get(levels);
  if (!w) {
    w = Object.fromEntries(Object.entries(levels).map(([f, ls]) => [f, Object.fromEntries(Object.entries(ls).map(([l, mu]) => [l, weight(mu as Level)]))])) as LevelWeights;
    weightsOf.set(levels, w);
  }
  return w;
}

/** Below this many patients, name frequencies say more about the sample than the population. */
export const MIN_TF_POPULATION = 1000;

/** Exact-agreement u from the index's own name frequencies, floored so one-off names stay sane. */
export function termFrequencyU(count: number | undefined, total: number, floor: number, fallback: number): number {
  if (!count || total < MIN_TF_POPULATION) return fallback;
  return Math.max(count / total, floor);
}
