import { describe, expect, it } from 'vitest';
import { CLINIC_ERRORS, SCHOOL_ERRORS, digitError, draftRow, typo } from '../../src/samples/corrupt.ts';
import type { ErrorProfile } from '../../src/samples/corrupt.ts';
import { daysFromCivil, isValidDate, parseIsoDate } from '../../src/samples/dates.ts';
import { randomAddress } from '../../src/samples/places.ts';
import type { Household, Person } from '../../src/samples/population.ts';
import { Rng } from '../../src/samples/random.ts';

const today = parseIsoDate('2026-11-01');

/** Levenshtein distance with adjacent transpositions (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

function person(overrides: Partial<Person> = {}): Person {
  return {
    idx: 0, ordinal: 0, id: 'abc', given: 'José', middle: 'Luis', family: 'Muñoz', suffix: 'Jr', sex: 'male',
    birth: daysFromCivil(2012, 5, 7), household: 0, multipleBirth: 0, twin: -1, namesakes: null,
    phone: '2175550134', asciiInIIS: false, addressInIIS: true, phoneInIIS: true, mrn: '', mrnInIIS: false,
    ...overrides,
  };
}

function house(rng: Rng): Household {
  return { address: randomAddress(rng), streetStyle: 'abbr', phone: '2175550199', members: [0] };
}

const NONE: ErrorProfile = Object.fromEntries(Object.keys(SCHOOL_ERRORS).map((k) => [k, 0])) as unknown as ErrorProfile;

describe('typo', () => {
  it('makes exactly one insertion, deletion, substitution or transposition', () => {
    const rng = new Rng(11);
    for (const name of ['Smith', 'Johnson', 'María', "O'Brien", 'Li', 'Elizabeth']) {
      for (let i = 0; i < 200; i++) {
        const out = typo(rng, name);
        expect(out).not.toBe(name);
        expect(editDistance(name, out)).toBe(1);
      }
    }
  });
});

describe('digitError', () => {
  it('changes one digit and still gives a valid date that is not in the future', () => {
    const rng = new Rng(12);
    for (let i = 0; i < 500; i++) {
      const dob = { y: 2010 + (i % 10), m: 1 + (i % 12), d: 1 + (i % 28) };
      const out = digitError(rng, dob, today);
      if (!out) continue;
      expect(isValidDate(out.y, out.m, out.d)).toBe(true);
      expect(daysFromCivil(out.y, out.m, out.d)).toBeLessThanOrEqual(today);
      const before = `${dob.y}${String(dob.m).padStart(2, '0')}${String(dob.d).padStart(2, '0')}`;
      const after = `${out.y}${String(out.m).padStart(2, '0')}${String(out.d).padStart(2, '0')}`;
      expect([...before].filter((c, k) => c !== after[k]).length).toBe(1);
    }
  });
});

describe('draftRow', () => {
  it('returns the truth unchanged when no error fires', () => {
    const rng = new Rng(13);
    const h = house(rng);
    const d = draftRow(rng, person(), h, { profile: NONE, suffixColumn: true, phone: 'household', today });
    expect(d).toMatchObject({ given: 'José', middle: 'Luis', family: 'Muñoz', suffix: 'Jr', sex: 'male', phone: '2175550199', errors: [] });
    expect(d.dob).toEqual({ y: 2012, m: 5, d: 7 });
    expect(d.address).toBe(h.address);
  });

  it('drops the suffix in layouts without a suffix column', () => {
    const rng = new Rng(14);
    const d = draftRow(rng, person(), house(rng), { profile: NONE, suffixColumn: false, phone: 'person', today });
    expect(d.suffix).toBe('');
    expect(d.phone).toBe('2175550134');
  });

  it('swaps day and month only when both could be a month', () => {
    const rng = new Rng(15);
    const profile = { ...NONE, dob_day_month_swap: 1 };
    const swapped = draftRow(rng, person(), house(rng), { profile, suffixColumn: true, phone: 'household', today });
    expect(swapped.dob).toEqual({ y: 2012, m: 7, d: 5 });
    expect(swapped.errors).toEqual(['dob_day_month_swap']);
    const late = draftRow(rng, person({ birth: daysFromCivil(2012, 5, 17) }), house(rng), { profile, suffixColumn: true, phone: 'household', today });
    expect(late.dob).toEqual({ y: 2012, m: 5, d: 17 });
    expect(late.errors).toEqual([]);
  });

  it('keeps the accents the IIS folded, or folds those it kept, and says so', () => {
    const rng = new Rng(16);
    const kept = draftRow(rng, person({ asciiInIIS: true }), house(rng), { profile: { ...NONE, diacritics_kept: 1 }, suffixColumn: true, phone: 'household', today });
    expect(kept.given).toBe('José');
    expect(kept.errors).toEqual(['diacritics_kept']);
    const folded = draftRow(rng, person({ asciiInIIS: true }), house(rng), { profile: NONE, suffixColumn: true, phone: 'household', today });
    expect(folded.family).toBe('Munoz');
    expect(folded.errors).toEqual([]);
    const dropped = draftRow(rng, person(), house(rng), { profile: { ...NONE, diacritics_dropped: 1 }, suffixColumn: true, phone: 'household', today });
    expect(dropped.family).toBe('Munoz');
    expect(dropped.errors).toEqual(['diacritics_dropped']);
  });

  it('makes the four kinds of invalid rows', () => {
    const rng = new Rng(17);
    const opts = { profile: NONE, suffixColumn: true, phone: 'household' as const, today };
    expect(draftRow(rng, person(), house(rng), { ...opts, invalid: 'missing_dob' }).dob).toBeNull();
    const impossible = draftRow(rng, person(), house(rng), { ...opts, invalid: 'impossible_dob' }).dob!;
    expect(isValidDate(impossible.y, impossible.m, impossible.d)).toBe(false);
    const future = draftRow(rng, person(), house(rng), { ...opts, invalid: 'future_dob' }).dob!;
    expect(daysFromCivil(future.y, future.m, future.d)).toBeGreaterThan(today);
    const blank = draftRow(rng, person(), house(rng), { ...opts, invalid: 'blank_family' });
    expect(blank.family).toBe('');
    expect(blank.errors).toEqual(['blank_family']);
  });

  it('leaves most rows about an ordinary name clean under the real profiles', () => {
    const rng = new Rng(18);
    let clean = 0;
    for (let i = 0; i < 2000; i++) {
      const p = person({ given: 'Robert', middle: 'Allen', family: 'Smith', suffix: '', birth: daysFromCivil(1990, 1 + (i % 12), 1 + (i % 28)) });
      const d = draftRow(rng, p, house(rng), { profile: i % 2 ? CLINIC_ERRORS : SCHOOL_ERRORS, suffixColumn: i % 2 === 0, phone: 'person', today });
      if (d.errors.length === 0) clean++;
    }
    expect(clean / 2000).toBeGreaterThan(0.5);
    expect(clean / 2000).toBeLessThan(0.9);
  });
});
