import { describe, expect, it } from 'vitest';
import { blockingKeys, CandidateIndex, classify, compareBirthDate, compareFamily, compareGiven, comparePair, guardFailure, keepBlock, matchChunk, rowKeys } from '../src/match/index.ts';
import naturalJaroWinkler from 'natural/lib/natural/distance/jaro-winkler_distance.js';
import { jaroWinkler, oneEditApart } from '../src/match/string-metrics.ts';
import type { Identifier, IndexPatient, NormalisedRow, PersonFields, RowIdentifier } from '../src/model/index.ts';
import { placeholderNames } from '../src/normalise/index.ts';

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

describe('jaroWinkler', () => {
  it('gives exactly the score natural gives, on names and on random strings of few letters (where matches and transpositions pile up)', () => {
    let seed = 12345;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const draw = (letters: string) => Array.from({ length: Math.floor(next() * 12) }, () => letters[Math.floor(next() * letters.length)]).join('');
    const pairs: [string, string][] = [
      ['MARTHA', 'MARHTA'],
      ['DWAYNE', 'DUANE'],
      ['DIXON', 'DICKSONX'],
      ['A', 'AB'],
      ['MARY ANN', 'MARYANN'],
    ];
    for (let i = 0; i < 20_000; i++) pairs.push(i % 2 ? [draw('ABC'), draw('ABC')] : [draw('ABCDEHILMNORSTY -'), draw('ABCDEHILMNORSTY -')]);
    const differ = pairs.filter(([a, b]) => a !== '' && b !== '' && jaroWinkler(a, b) !== naturalJaroWinkler(a, b));
    expect(differ).toEqual([]);
    expect(jaroWinkler('MARTHA', 'MARHTA')).toBeCloseTo(0.961, 3);
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

describe('identifiers, missing evidence, placeholders and relatives', () => {
  const SSN = 'http://hl7.org/fhir/sid/us-ssn';
  const ssn = (value: string): RowIdentifier => ({ system: SSN, value, label: 'us-ssn' });
  const withSsn = (id: string, fields: Partial<PersonFields>, value?: string): IndexPatient => ({ ...patient(id, fields), identifiers: value ? [{ system: SSN, value }] : [] });
  let line = 1;
  const row = (fields: Partial<PersonFields>, identifiers: RowIdentifier[] = []): NormalisedRow => {
    const p = person(fields);
    const ph = placeholderNames(p.given, p.family);
    return { kind: 'valid', line: ++line, index: line - 2, recordId: `r${line}`, person: p, identifiers, warnings: [], ...(ph.given || ph.family ? { placeholder: ph } : {}) };
  };
  /** Matches rows against these patients through the in-memory index, as a run does. */
  const match = async (patients: IndexPatient[], ...rows: NormalisedRow[]) => {
    const idx = new CandidateIndex();
    for (const p of patients) idx.add(p);
    return matchChunk(rows, idx.seal(), { thresholds: T, freq: idx.freq });
  };
  const home = { street: '40 ELM AVE', zip: '62702', phone: '2175550200' };

  it('weighs an identifier per system, names it in the reasons, and blocks an auto-match when it differs', async () => {
    const ava = withSsn('ava', home, '123456780');
    const [same, other, slip] = await match([ava], row(home, [ssn('123456780')]), row(home, [ssn('223456781')]), row(home, [ssn('123456708')]));
    expect(same).toMatchObject({ outcome: 'matched', patientId: 'ava' });
    expect(same!.candidates[0]!.comparisons).toContainEqual(expect.objectContaining({ field: 'identifier[us-ssn]', level: 'agree' }));
    // Everything else agrees, the SSN does not: parent and child, twins — a person decides.
    expect(other).toMatchObject({ outcome: 'possible', candidates: [{ patientId: 'ava', guard: 'identifier' }] });
    expect(other!.candidates[0]!.comparisons).toContainEqual(expect.objectContaining({ field: 'identifier[us-ssn]', level: 'different' }));
    // One keystroke apart: weak evidence, no block where the given name agrees exactly…
    expect(slip).toMatchObject({ outcome: 'matched', patientId: 'ava' });
    expect(slip!.candidates[0]!.comparisons).toContainEqual(expect.objectContaining({ field: 'identifier[us-ssn]', level: 'typo' }));
    // …but twins are often given consecutive SSNs: ISABELLA with ISABEL's number plus one is not ISABEL.
    const [twin] = await match([withSsn('isabel', { ...home, given: 'ISABEL' }, '123456781')], row({ ...home, given: 'ISABELLA' }, [ssn('123456782')]));
    expect(twin).toMatchObject({ outcome: 'possible', candidates: [{ patientId: 'isabel', guard: 'identifier' }] });
  });

  it('never lets an identifier carry another given name, or two disagreeing fields', async () => {
    const mary = withSsn('mary', { ...home, given: 'MARY', family: 'SMITH' }, '123456780');
    // JOHN, with his twin MARY's SSN, while the index does not hold JOHN yet.
    const [john] = await match([mary], row({ ...home, given: 'JOHN', family: 'SMITH' }, [ssn('123456780')]));
    expect(john).toMatchObject({ outcome: 'possible', candidates: [{ patientId: 'mary', guard: 'given_name' }] });
    // A changed surname on the identifier alone is its one stand-in: a blank given name as well is two.
    const [married] = await match([mary], row({ given: 'MARY', family: 'JONES' }, [ssn('123456780')]));
    expect(married).toMatchObject({ outcome: 'matched', patientId: 'mary' });
    const [two] = await match([mary], row({ given: '', family: 'JONES' }, [ssn('123456780')]));
    expect(two).toMatchObject({ outcome: 'possible', candidates: [{ patientId: 'mary', guard: 'given_name' }] });
  });

  it('lets an agreeing identifier stand in for one missing name or birth date, and only one', async () => {
    const ava = withSsn('ava', home, '123456780');
    const [noGiven, noGivenNoId, noDob, twoMissing] = await match(
      [ava],
      row({ ...home, given: '' }, [ssn('123456780')]),
      row({ ...home, given: '' }),
      row({ ...home, birthDate: '' }, [ssn('123456780')]),
      row({ ...home, given: '', birthDate: '' }, [ssn('123456780')]),
    );
    expect(noGiven).toMatchObject({ outcome: 'matched', patientId: 'ava' });
    expect(noGivenNoId).toMatchObject({ outcome: 'possible', candidates: [{ patientId: 'ava', guard: 'given_name' }] });
    expect(noDob).toMatchObject({ outcome: 'matched', patientId: 'ava' });
    expect(twoMissing!.outcome).toBe('possible');
  });

  it('never lets an identifier carry a birth date a generation away, or win against the relative the row names', async () => {
    const mother = withSsn('mother', { ...home, birthDate: '1985-03-14' }, '123456780');
    const daughter = withSsn('daughter', { ...home, birthDate: '2015-03-14' });
    // The mother's SSN on the daughter's row (a subscriber's id on a dependent): never the mother.
    const [alone] = await match([mother], row(home, [ssn('123456780')]));
    expect(alone).toMatchObject({ outcome: 'possible', candidates: [{ patientId: 'mother', guard: 'birth_date' }] });
    // With the daughter in the index too, the row names her and carries her mother's SSN: a person decides.
    const [both] = await match([mother, daughter], row(home, [ssn('123456780')]));
    expect(both).toMatchObject({ outcome: 'ambiguous' });
    expect(both!.candidates.map((c) => c.patientId).sort()).toEqual(['daughter', 'mother']);
    // A changed birth date within a generation, with a namesake born on the row's date: a person decides.
    const cousin = withSsn('cousin', { ...home, birthDate: '2013-08-01' }, '123456780');
    const [contest] = await match([cousin, daughter], row(home, [ssn('123456780')]));
    expect(contest!.outcome).toBe('ambiguous');
    // Within a generation the identifier may carry a changed birth date.
    const [close] = await match([withSsn('ava', { ...home, birthDate: '2013-08-01' }, '123456780')], row(home, [ssn('123456780')]));
    expect(close).toMatchObject({ outcome: 'matched', patientId: 'ava' });
  });

  it('does not let an identifier pick one twin when the row spells the other\'s name', async () => {
    const noah = withSsn('noah', { ...home, given: 'NOAH' }, '123456780');
    const liam = withSsn('liam', { ...home, given: 'LIAM' });
    const [r] = await match([noah, liam], row({ ...home, given: 'LIAM' }, [ssn('123456780')]));
    expect(r!.outcome).toBe('ambiguous');
    const [alone] = await match([noah], row({ ...home, given: 'NOAH' }, [ssn('123456780')]));
    expect(alone).toMatchObject({ outcome: 'matched', patientId: 'noah' });
  });

  it('never auto-matches a placeholder name, and finds no one by it', async () => {
    const baby = patient('baby', { ...home, given: 'BABY GIRL', birthDate: '2026-10-30' });
    const twin = patient('twin', { ...home, given: 'BABY GIRL', birthDate: '2026-10-30' });
    const [r] = await match([baby], row({ ...home, given: 'BABY GIRL', birthDate: '2026-10-30' }));
    expect(r).toMatchObject({ outcome: 'possible', candidates: [{ patientId: 'baby', guard: 'placeholder_name' }] });
    expect(r!.candidates[0]!.comparisons[0]).toMatchObject({ field: 'given', level: 'missing', weight: 0 });
    const [two] = await match([baby, twin], row({ ...home, given: 'BABY GIRL', birthDate: '2026-10-30' }, [ssn('123456780')]));
    expect(two!.outcome).not.toBe('matched');
    expect(blockingKeys(person({ given: 'BABY BOY', family: 'DOE' }), [])).toEqual([]);
    // A newborn registered as BABY BOY, named since: the given name is missing evidence on the index side.
    const [named] = await match([patient('nb', { ...home, given: 'BABY BOY', birthDate: '2026-10-30' })], row({ ...home, given: 'NOAH', birthDate: '2026-10-30' }));
    expect(named).toMatchObject({ outcome: 'possible', candidates: [{ patientId: 'nb', guard: 'given_name' }] });
  });

  it('never auto-matches a Jr to a namesake born in another decade, whatever the digits', () => {
    const jr = pairOf(person({ ...home, suffix: 'JR', birthDate: '1985-03-14' }), undefined, patient('sr', { ...home, birthDate: '1975-03-14' }), ctx);
    expect(jr.birthDate).toBe('typo');
    expect(guardFailure(jr)).toBe('relative');
  });

  it('compares a given name cut short as its own weaker level, and one name spaced two ways as one', () => {
    expect(compareGiven('MI', 'MINNIE', '')).toBe('prefix');
    expect(compareGiven('MARYANN', 'MARY ANN', '')).toBe('exact');
    for (const f of ['DJONES', 'D JONES']) expect(compareFamily(f, 'DJONES')).toBe('exact');
    expect(guardFailure(pairOf(person({ given: 'MI' }), undefined, patient('a', { given: 'MINNIE' }), ctx))).toBe('given_name');
  });

  it('finds a person whose birth date is wrong and whose given name has a typo, in the second round only', () => {
    const truth = new Set(blockingKeys(person({ given: 'KAYLA', family: 'HARRINGTON', birthDate: '1915-06-12', street: '14 MALTBY CIR', zip: '03465' }), []));
    const keys = rowKeys({ person: person({ given: 'KAYLS', family: 'HARRINGTON', birthDate: '1951-06-12', street: '14 MALTBY CIR', zip: '03465' }), identifiers: [] });
    expect(keys.first.some((k) => truth.has(k))).toBe(false);
    expect(keys.second.some((k) => truth.has(k))).toBe(true);
    const swapped = rowKeys({ person: person({ given: 'HARRINGTON', family: 'KAYLA', birthDate: '1915-06-12' }), identifiers: [] });
    expect(swapped.second.some((k) => truth.has(k))).toBe(true);
  });

  it('skips a broad block too big to say anything, in memory as in the database', () => {
    expect(keepBlock('nn:JN|SM0', 6)).toBe(true);
    expect(keepBlock('nn:JN|SM0', 7)).toBe(false);
    expect(keepBlock('df:2015-03-14|MRTN', 500)).toBe(true);
    const idx = new CandidateIndex();
    for (let i = 0; i < 8; i++) idx.add(patient(`s${i}`, { given: 'JOHN', family: 'SMITH', birthDate: `19${50 + i}-01-01` }));
    const key = blockingKeys(person({ given: 'JOHN', family: 'SMITH' }), []).find((k) => k.startsWith('nn:'))!;
    expect(idx.seal().byKeys([key]).size).toBe(0);
  });
});

describe('records merged into one person (the identity feed)', () => {
  let line = 1;
  const row = (fields: Partial<PersonFields>): NormalisedRow => ({ kind: 'valid', line: ++line, index: line - 2, recordId: `r${line}`, person: person(fields), identifiers: [], warnings: [] });
  const match = async (patients: IndexPatient[], ...rows: NormalisedRow[]) => {
    const idx = new CandidateIndex();
    for (const p of patients) idx.add(p);
    return matchChunk(rows, idx.seal(), { thresholds: T, freq: idx.freq });
  };
  const home = { street: '40 ELM AVE', zip: '62702', phone: '2175550200' };
  const ava = patient('ava', home);
  const merged = (id: string, fields: Partial<PersonFields>): IndexPatient => ({ ...patient(id, fields), survivor: 'ava' });

  it('finds the survivor for a row with the old demographics of a record merged into it, and counts the two records as one candidate', async () => {
    const maiden = merged('ava-old', { family: 'LOPEZ', street: '9 OAK ST', zip: '62701', phone: '2175550111' });
    const [old, now] = await match([ava, maiden], row({ family: 'LOPEZ', street: '9 OAK ST', zip: '62701', phone: '2175550111' }), row(home));
    expect(old).toMatchObject({ outcome: 'matched', patientId: 'ava' });
    expect(old!.candidates.map((c) => c.patientId)).toEqual(['ava']);
    expect(now).toMatchObject({ outcome: 'matched', patientId: 'ava' });
    // A duplicate as like her as her own record: without one candidate per person, two records this close are ambiguous.
    const [both] = await match([ava, merged('ava-dup', { ...home, phone: '' })], row(home));
    expect(both).toMatchObject({ outcome: 'matched', patientId: 'ava', candidates: [{ patientId: 'ava' }] });
  });

  it('judges the person by a record that passes the guards, though a merged one without a surname scores higher', async () => {
    const live = patient('ava', {});
    const noSurname = merged('ava-x', { ...home, family: '' });
    const [r] = await match([live, noSurname], row(home));
    expect(r).toMatchObject({ outcome: 'matched', patientId: 'ava' });
    expect(r!.candidates[0]!.guard).toBeUndefined();
  });
});
