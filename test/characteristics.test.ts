/** Characteristic Groups' definitions and the day arithmetic their ages rest on (pure functions). */
import { describe, expect, it } from 'vitest';
import { characteristicMembers, yearsBefore } from '../src/export/characteristics.ts';
import { checkCharacteristics } from '../src/store/index.ts';

describe('yearsBefore', () => {
  it.each([
    ['2026-12-07', 18, '2008-12-07'],
    ['2024-02-29', 18, '2006-02-28'],
    ['2024-02-29', 4, '2020-02-29'],
    ['2026-01-01', 0, '2026-01-01'],
  ])('%s minus %i years is %s', (day, years, expected) => expect(yearsBefore(day, years)).toBe(expected));
});

describe('checkCharacteristics', () => {
  it('keeps a sound definition, each ZIP and vaccine once', () => {
    expect(checkCharacteristics({ zips: ['61761', '61761', '61820'], underAge: 18, minAge: 5, vaccines: ['08', '08'] })).toEqual({ zips: ['61761', '61820'], underAge: 18, minAge: 5, vaccines: ['08'] });
  });

  it.each([
    [{ zips: [] }, /zips must name at least one/],
    [{ zips: ['6176'] }, /five-digit/],
    [{ zips: ['61761'], underAge: 0 }, /underAge must be at least 1/],
    [{ zips: ['61761'], underAge: 2.5 }, /whole number/],
    [{ zips: ['61761'], underAge: 10, minAge: 10 }, /minAge must be below underAge/],
    [{ zips: ['61761'], vaccines: ['MMR'] }, /CVX codes/],
  ])('refuses %j', (c, message) => expect(() => checkCharacteristics(c)).toThrow(message));
});

describe('characteristicMembers', () => {
  it('bounds birth dates by the day of the export, leaves out unknown birth dates when an age is asked, and quotes every value', () => {
    const sql = characteristicMembers({ zips: ["6176'1"], underAge: 18, minAge: 5 }, '2026-12-07T10:00:00.000Z');
    expect(sql).toContain(`p.birth_date > E'2008-12-07'`);
    expect(sql).toContain(`p.birth_date <= E'2021-12-07'`);
    expect(sql).toContain(`p.birth_date <> ''`);
    expect(sql).toContain(`E'6176''1'`);
    expect(sql).toContain('p.replaced_by IS NULL');
  });
});
