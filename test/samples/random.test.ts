import { describe, expect, it } from 'vitest';
import { Rng, WeightedTable, hash32 } from '../../src/samples/random.ts';
import { civilFromDays, daysFromCivil, isoDate, parseIsoDate, ageOn } from '../../src/samples/dates.ts';
import { patientId, iisNumber, UniqueIds } from '../../src/samples/ids.ts';

describe('Rng', () => {
  it('repeats the same stream for the same seed and labels', () => {
    const a = new Rng(42, 'x', 1);
    const b = new Rng(42, 'x', 1);
    const xs = Array.from({ length: 100 }, () => a.uint32());
    expect(Array.from({ length: 100 }, () => b.uint32())).toEqual(xs);
  });

  it('gives independent streams for different labels and seeds', () => {
    const first = (rng: Rng): number[] => Array.from({ length: 8 }, () => rng.uint32());
    expect(first(new Rng(42, 'x'))).not.toEqual(first(new Rng(42, 'y')));
    expect(first(new Rng(42, 'x'))).not.toEqual(first(new Rng(43, 'x')));
  });

  it('draws uniform floats in [0, 1) and integers in range', () => {
    const rng = new Rng(7);
    let sum = 0;
    for (let i = 0; i < 20000; i++) {
      const x = rng.next();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
      sum += x;
      const n = rng.between(3, 5);
      expect(n === 3 || n === 4 || n === 5).toBe(true);
    }
    expect(sum / 20000).toBeGreaterThan(0.48);
    expect(sum / 20000).toBeLessThan(0.52);
  });

  it('picks weighted items in proportion to their weights', () => {
    const table = new WeightedTable([['a', 1], ['b', 3], ['c', 0]] as const);
    const rng = new Rng(1);
    const counts = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 40000; i++) counts[table.pick(rng)]++;
    expect(counts.c).toBe(0);
    expect(counts.b / counts.a).toBeGreaterThan(2.7);
    expect(counts.b / counts.a).toBeLessThan(3.3);
  });

  it('hashes numbers beyond 32 bits without folding them together', () => {
    expect(hash32(2 ** 32)).not.toBe(hash32(0));
    expect(hash32('a', 'b')).not.toBe(hash32('ab'));
  });
});

describe('dates', () => {
  it('round-trips day numbers and ISO dates', () => {
    expect(daysFromCivil(1970, 1, 1)).toBe(0);
    expect(isoDate(daysFromCivil(2000, 2, 29))).toBe('2000-02-29');
    for (let day = -40000; day < 40000; day += 97) {
      const { y, m, d } = civilFromDays(day);
      expect(daysFromCivil(y, m, d)).toBe(day);
      expect(parseIsoDate(isoDate(day))).toBe(day);
    }
  });

  it('rejects impossible dates and counts whole years of age', () => {
    expect(() => parseIsoDate('2015-02-30')).toThrow();
    expect(ageOn(parseIsoDate('2010-11-02'), parseIsoDate('2026-11-01'))).toBe(15);
    expect(ageOn(parseIsoDate('2010-11-01'), parseIsoDate('2026-11-01'))).toBe(16);
  });
});

describe('ids', () => {
  it('makes distinct 10-character base32 patient ids that depend on the seed', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200_000; i++) seen.add(patientId(5, i));
    expect(seen.size).toBe(200_000);
    for (const id of [...seen].slice(0, 50)) expect(id).toMatch(/^[0-9a-hjkmnp-tv-z]{10}$/);
    expect(patientId(5, 0)).not.toBe(patientId(6, 0));
    expect(patientId(5, 123)).toBe(patientId(5, 123));
  });

  it('makes IIS numbers of eight digits that never repeat', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) seen.add(iisNumber(i, 1000, hash32(i)));
    expect(seen.size).toBe(1000);
    for (const n of seen) expect(n).toMatch(/^IIS\d{8}$/);
  });

  it('draws unique record ids with a fixed prefix and width', () => {
    const ids = new UniqueIds('ACM', 9);
    const rng = new Rng(3);
    const got = new Set(Array.from({ length: 5000 }, () => ids.next(rng)));
    expect(got.size).toBe(5000);
    for (const id of got) expect(id).toMatch(/^ACM\d{9}$/);
    expect(ids.claim([...got][0]!)).toBe(false);
  });
});
