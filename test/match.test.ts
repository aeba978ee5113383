import { describe, expect, it } from 'vitest';
import { blockingKeys, classify, compareBirthDate, compareFamily, compareGiven, comparePair, guardFailure } from '../src/match/index.ts';
import { oneEditApart } from '../src/match/string-metrics.ts';
import type { Identifier, IndexPatient, PersonFields } from '../src/model/index.ts';

const person = (p: Partial<PersonFields>): PersonFields => ({
  given: 'AVA',
  middle: '',
  family: 'MARTINEZ',
  suffix: '',
  birthDate: '2015-03-14',
  sex: 'female',
  street: '',
  city: '',
  state: '',
  zip: '',
  phone: '',
  ...p,
});
const patient = (id: string, p: Partial<PersonFields>): IndexPatient => ({ id, person: person(p), identifiers: [] });
const ctx = { freq: { total: 0, given: new Map(), family: new Map() } };
const T = { match: 18, possible: 6 };
/** A roster row of `p` carrying `id` (the record-id identifier form), compared with `cand`. */
const pairOf = (p: PersonFields, id: Identifier | undefined, cand: IndexPatient, c: Parameters<typeof comparePair>[2]) =>
  comparePair({ person: p, identifiers: id ? [{ ...id, label: 'mrn' }] : [] }, cand, c);

describe('comparison levels', () => {
  it.each([
    ['AVA', 'AVA', 'exact'],
    ['BILL', 'WILLIAM', 'nickname'],
    ['BRANDNO', 'BRANDON', 'typo'],
    ['JHON', 'JOHN', 'typo'],
    ['MARY', 'MARY ANN', 'token'],
    ['A', 'AVA', 'initial'],
    ['AVA', 'NOAH', 'different'],
    ['', 'AVA', 'missing'],
  ])('given %s vs %s is %s', (a, b, level) => {
    expect(compareGiven(a, b, '')).toBe(level);
  });

  it('recognises a middle name used as the first', () => {
    expect(compareGiven('ROSE', 'MARY', 'ROSE')).toBe('middle_as_given');
  });

  it.each([
    ['MARTINEZ', 'MARTINEZ', 'exact'],
    ['DE LA CRUZ', 'DELACRUZ', 'exact'],
    ['GARCIA LOPEZ', 'GARCIA', 'compound'],
    ['MARTINEZ', 'MARTINES', 'typo'],
    ['SMITH', 'SMYTHE', 'phonetic'],
    ['SMITH', 'NGUYEN', 'different'],
  ])('family %s vs %s is %s', (a, b, level) => {
    expect(compareFamily(a, b)).toBe(level);
  });

  it.each([
    ['2015-03-14', '2015-03-14', 'exact'],
    ['2015-03-04', '2015-04-03', 'day_month_swap'],
    ['2015-03-14', '2015-03-15', 'typo'],
    ['2015-03-14', '2016-03-14', 'typo'],
    ['2015-03-14', '1985-03-14', 'different'],
    ['', '2015-03-14', 'missing'],
  ])('birth date %s vs %s is %s', (a, b, level) => {
    expect(compareBirthDate(a, b)).toBe(level);
  });
});

describe('weights and guards', () => {
  it('weighs agreement above disagreement and explains every field', () => {
    const same = pairOf(person({ zip: '62701' }), undefined, patient('a', { zip: '62701' }), ctx);
    const other = pairOf(person({ zip: '62701' }), undefined, patient('b', { given: 'NOAH', family: 'NGUYEN', birthDate: '1990-01-01', zip: '62702' }), ctx);
    expect(same.score).toBeGreaterThan(T.match);
    expect(other.score).toBeLessThan(0);
    expect(same.comparisons.map((c) => c.field)).toEqual(['given', 'family', 'birthDate', 'sex', 'zip']);
  });

  it('counts a shared rare surname for more than a shared common one', () => {
    const freq = { total: 100_000, given: new Map([['AVA', 500]]), family: new Map([['SMITH', 1000], ['QUINTANILLA', 2]]) };
    const common = pairOf(person({ family: 'SMITH' }), undefined, patient('a', { family: 'SMITH' }), { freq });
    const rare = pairOf(person({ family: 'QUINTANILLA' }), undefined, patient('b', { family: 'QUINTANILLA' }), { freq });
    expect(rare.score - common.score).toBeGreaterThan(5);
  });

  it('scores swapped first and last names close to straight ones', () => {
    const p = pairOf(person({ given: 'MARTINEZ', family: 'AVA' }), undefined, patient('a', {}), ctx);
    expect(p.swapped).toBe(true);
    expect(p.comparisons[0]!.level).toBe('swapped:exact');
    expect(guardFailure(p)).toBeNull();
  });

  it('never auto-matches a twin: same family, birth date and home, another given name', () => {
    const home = { street: '40 ELM AVE', zip: '62702', phone: '2175550100' };
    const row = person({ given: 'LIAM', ...home });
    const twin = pairOf(row, undefined, patient('noah', { given: 'NOAH', ...home }), ctx);
    expect(twin.score).toBeGreaterThan(T.match); // the household alone would carry it…
    expect(guardFailure(twin)).toBe('given_name'); // …so the guard must stop it
    const r = classify([{ patientId: 'noah', score: twin.score, probability: 1, comparisons: twin.comparisons, pair: twin }], T);
    expect(r.outcome).toBe('possible');
  });

  it('never auto-matches a Jr to his Sr, or across conflicting suffixes', () => {
    const home = { given: 'JAMES', family: 'CARTER', sex: 'male' as const, street: '9 PINE RD', phone: '2175550199' };
    const jr = person({ ...home, suffix: 'JR', birthDate: '2010-05-05' });
    const sr = pairOf(jr, undefined, patient('sr', { ...home, suffix: 'SR', birthDate: '1980-01-20' }), ctx);
    expect(guardFailure(sr)).toBe('suffix_conflict');
    const noSuffix = pairOf(person({ ...home, birthDate: '2010-05-05' }), undefined, patient('sr', { ...home, birthDate: '1980-01-20' }), ctx);
    expect(guardFailure(noSuffix)).toBe('birth_date');
  });

  it('lets an identifier the IIS holds carry a changed surname', () => {
    const mrn = { system: 'urn:mrn', value: 'M1' };
    const row = person({ family: 'NGUYEN' });
    const cand: IndexPatient = { ...patient('a', {}), identifiers: [mrn] };
    expect(guardFailure(pairOf(row, mrn, cand, ctx))).toBeNull();
    expect(guardFailure(pairOf(row, undefined, cand, ctx))).toBe('family_name');
  });
});

describe('classification', () => {
  const scored = (id: string, score: number, fields: Partial<PersonFields> = {}) => {
    const pair = pairOf(person({}), undefined, patient(id, fields), ctx);
    return { patientId: id, score, probability: 1, comparisons: pair.comparisons, pair };
  };
  it('is matched for one high candidate, ambiguous for two, possible below, no_match for none', () => {
    expect(classify([scored('a', 30), scored('b', 10)], T)).toMatchObject({ outcome: 'matched', patientId: 'a' });
    expect(classify([scored('a', 30), scored('b', 29)], T).outcome).toBe('ambiguous');
    expect(classify([scored('a', 12)], T).outcome).toBe('possible');
    expect(classify([scored('a', 2)], T).outcome).toBe('no_match');
    expect(classify([], T).outcome).toBe('no_match');
  });
});

describe('blocking', () => {
  it('puts swapped names, hyphenated surnames and nicknames in a shared block with the true record', () => {
    const truth = blockingKeys(person({ given: 'WILLIAM', family: 'GARCIA' }), []);
    const shares = (p: Partial<PersonFields>) => blockingKeys(person(p), []).some((k) => truth.includes(k));
    expect(shares({ given: 'GARCIA', family: 'WILLIAM' })).toBe(true);
    expect(shares({ given: 'WILLIAM', family: 'GARCIA LOPEZ' })).toBe(true);
    expect(shares({ given: 'BILL', family: 'GARCIA' })).toBe(true);
    expect(shares({ given: 'WILLIAM', family: 'GARCIA', birthDate: '2015-14-03' })).toBe(true);
    expect(shares({ given: 'WILLIAM', family: 'GARCIA', birthDate: '2016-03-14' })).toBe(true);
    expect(shares({ given: 'WILLIAM', family: 'NGUYEN' })).toBe(true);
    expect(shares({ given: 'NOAH', family: 'NGUYEN' })).toBe(false);
  });
});

describe('one keying slip', () => {
  it.each([
    ['JOHN', 'JHON', true],
    ['JOHN', 'JON', true],
    ['JON', 'JOHN', true],
    ['JOHN', 'JOAN', true],
    ['JOHN', 'JOHN', false],
    ['JOHN', 'HJNO', false],
    ['MARTINEZ', 'MARTIENZ', true],
    ['20150314', '20150341', true],
    ['20150314', '20160315', false],
    ['', 'A', true],
  ])('%s and %s: %s', (a, b, expected) => {
    expect(oneEditApart(a, b)).toBe(expected);
  });
});

describe('telling apart several qualifying candidates', () => {
  const row = person({ street: '40 ELM AVE', zip: '62702', phone: '2175550100' });
  const scoredAs = (id: string, fields: Partial<PersonFields>) => {
    const p = patient(id, fields);
    const pair = pairOf(row, undefined, p, ctx);
    const x = p.person;
    return { patientId: id, score: pair.score, probability: 1, comparisons: pair.comparisons, pair, household: { street: x.street, phone: x.phone, given: x.given, family: x.family, birthDate: x.birthDate } };
  };

  it('matches the person at the row\'s address over a namesake born the same day elsewhere', () => {
    const home = scoredAs('home', { street: '40 ELM AVE', zip: '62702', phone: '2175550100' });
    const namesake = scoredAs('elsewhere', { street: '9 OAK ST', zip: '62999', phone: '2175559999' });
    expect(classify([namesake, home], T)).toMatchObject({ outcome: 'matched', patientId: 'home' });
  });

  it('leaves two records of one person (an IIS duplicate) ambiguous', () => {
    const a = scoredAs('a', { street: '40 ELM AVE', zip: '62702', phone: '2175550100' });
    const b = scoredAs('b', { street: '40 ELM AVE', zip: '62702', phone: '2175550100' });
    expect(classify([a, b], T).outcome).toBe('ambiguous');
  });

  it('between twins, ignores the address one of them lacks in the IIS, and lets an exact given name decide', () => {
    const twinWithAddress = scoredAs('isabel', { given: 'ISABEL', street: '40 ELM AVE', zip: '62702', phone: '2175550100' });
    const rowAsIsabella = person({ given: 'ISABELLA', street: '40 ELM AVE', zip: '62702', phone: '2175550100' });
    const p1 = pairOf(rowAsIsabella, undefined, patient('isabel', { given: 'ISABEL', street: '40 ELM AVE', zip: '62702', phone: '2175550100' }), ctx);
    const p2 = pairOf(rowAsIsabella, undefined, patient('isabella', { given: 'ISABELLA' }), ctx);
    const household = (x: Partial<PersonFields>) => ({ street: x.street ?? '', phone: x.phone ?? '', given: x.given ?? '', family: 'MARTINEZ', birthDate: '2015-03-14' });
    const withAddress = { patientId: 'isabel', score: p1.score, probability: 1, comparisons: p1.comparisons, pair: p1, household: household({ given: 'ISABEL', street: '40 ELM AVE', phone: '2175550100' }) };
    const bare = { patientId: 'isabella', score: p2.score, probability: 1, comparisons: p2.comparisons, pair: p2, household: household({ given: 'ISABELLA' }) };
    expect(withAddress.score - bare.score).toBeGreaterThan(10); // the address alone would pick the wrong twin
    expect(classify([withAddress, bare], T)).toMatchObject({ outcome: 'matched', patientId: 'isabella' });
    expect(twinWithAddress.pair.given).toBe('different'); // AVA vs ISABEL: guard keeps it out entirely
  });

  it('needs the household or an identifier beside the names to accept a birth date one digit off', () => {
    const off = pairOf(person({ birthDate: '2015-03-15' }), undefined, patient('a', {}), ctx);
    expect(guardFailure(off)).toBe('birth_date');
    const offAtHome = pairOf(person({ birthDate: '2015-03-15', phone: '2175550100' }), undefined, patient('a', { phone: '2175550100' }), ctx);
    expect(guardFailure(offAtHome)).toBeNull();
  });
});
