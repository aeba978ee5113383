import { describe, it, expect } from 'vitest';
import { normaliseIdentifier, normalisePhone, normaliseSex, normaliseState, normaliseZip } from '../../src/normalise/index.ts';

describe('normaliseZip', () => {
  it('reduces ZIP and ZIP+4 to five digits', () => {
    expect(normaliseZip('62701')).toBe('62701');
    expect(normaliseZip('62701-1234')).toBe('62701');
    expect(normaliseZip('627011234')).toBe('62701');
    expect(normaliseZip('62701 1234')).toBe('62701');
    expect(normaliseZip(' 62701\t')).toBe('62701');
  });

  it('restores the leading zero a spreadsheet dropped', () => {
    expect(normaliseZip('2134')).toBe('02134');
    expect(normaliseZip('2134-5678')).toBe('02134');
    expect(normaliseZip('21345678')).toBe('02134');
  });

  it('restores two dropped zeros only for real 005xx–009xx ZIPs (Puerto Rico, USVI)', () => {
    expect(normaliseZip('601')).toBe('00601');
    expect(normaliseZip('9011234')).toBe('00901');
    expect(normaliseZip('123')).toBeNull();
  });

  it('returns empty for blank', () => {
    expect(normaliseZip('')).toBe('');
    expect(normaliseZip('  ')).toBe('');
  });

  it('rejects what is not a US ZIP', () => {
    for (const bad of ['ABCDE', '427', '627012', '62701-12', '62701-', '-62701', 'K1A 0B1', '00000', '62701-1234-5', '1234567890']) {
      expect(normaliseZip(bad), bad).toBeNull();
    }
  });
});

describe('normaliseState', () => {
  it('accepts the two-letter code in any case', () => {
    expect(normaliseState('IL')).toBe('IL');
    expect(normaliseState('il')).toBe('IL');
    expect(normaliseState(' Il ')).toBe('IL');
  });

  it('accepts full names and traditional abbreviations', () => {
    expect(normaliseState('Illinois')).toBe('IL');
    expect(normaliseState('ILL.')).toBe('IL');
    expect(normaliseState('Calif.')).toBe('CA');
    expect(normaliseState('Penna')).toBe('PA');
    expect(normaliseState('new york')).toBe('NY');
    expect(normaliseState('N.Y.')).toBe('NY');
    expect(normaliseState('West Virginia')).toBe('WV');
    expect(normaliseState('W. Va.')).toBe('WV');
  });

  it('tells Washington state from Washington DC', () => {
    expect(normaliseState('Washington')).toBe('WA');
    expect(normaliseState('Washington, D.C.')).toBe('DC');
    expect(normaliseState('D.C.')).toBe('DC');
  });

  it('accepts territories and military post offices', () => {
    expect(normaliseState('Puerto Rico')).toBe('PR');
    expect(normaliseState('Guam')).toBe('GU');
    expect(normaliseState('AE')).toBe('AE');
  });

  it('returns empty for blank and null for unknown', () => {
    expect(normaliseState('')).toBe('');
    expect(normaliseState(' \u00a0')).toBe('');
    expect(normaliseState('XX')).toBeNull();
    expect(normaliseState('Ontario')).toBeNull();
    expect(normaliseState('12')).toBeNull();
    expect(normaliseState('.')).toBeNull();
  });
});

describe('normalisePhone', () => {
  it('keeps the ten digits whatever the punctuation', () => {
    for (const raw of ['(217) 555-0100', '217-555-0100', '217.555.0100', '217 555 0100', '2175550100', ' 217/555-0100 ']) {
      expect(normalisePhone(raw), raw).toBe('2175550100');
    }
  });

  it('drops a leading country code 1', () => {
    expect(normalisePhone('+1 217-555-0100')).toBe('2175550100');
    expect(normalisePhone('1-217-555-0100')).toBe('2175550100');
    expect(normalisePhone('12175550100')).toBe('2175550100');
  });

  it('drops an extension', () => {
    expect(normalisePhone('217-555-0100 x123')).toBe('2175550100');
    expect(normalisePhone('217-555-0100X9')).toBe('2175550100');
    expect(normalisePhone('217-555-0100 ext. 5')).toBe('2175550100');
    expect(normalisePhone('217-555-0100 Extension 55')).toBe('2175550100');
    expect(normalisePhone('217-555-0100 #12')).toBe('2175550100');
  });

  it('returns empty for blank', () => {
    expect(normalisePhone('')).toBe('');
    expect(normalisePhone(' \t')).toBe('');
  });

  it('rejects numbers that are not ten-digit NANP numbers', () => {
    for (const bad of ['555-0100', '22175550100', '+44 20 7946 0958', '217555010', '1-800-FLOWERS', 'none', 'x123', '()']) {
      expect(normalisePhone(bad), bad).toBeNull();
    }
  });

  it('rejects placeholders made of one repeated digit', () => {
    expect(normalisePhone('000-000-0000')).toBeNull();
    expect(normalisePhone('999-999-9999')).toBeNull();
    expect(normalisePhone('1-111-111-1111')).toBeNull();
  });
});

describe('normaliseSex', () => {
  it('maps male, female, other and unknown codes case-insensitively', () => {
    for (const raw of ['M', 'm', 'Male', 'MALE', 'boy', '1']) expect(normaliseSex(raw), raw).toBe('male');
    for (const raw of ['F', 'f', 'Female', 'GIRL', '2']) expect(normaliseSex(raw), raw).toBe('female');
    for (const raw of ['X', 'O', 'other', 'Nonbinary', 'Non-Binary']) expect(normaliseSex(raw), raw).toBe('other');
    for (const raw of ['U', 'unk', 'Unknown', '0', '9']) expect(normaliseSex(raw), raw).toBe('unknown');
  });

  it('trims whitespace including NBSP', () => {
    expect(normaliseSex(' F ')).toBe('female');
    expect(normaliseSex('\u00a0m\t')).toBe('male');
  });

  it('returns empty for blank and null for anything else', () => {
    expect(normaliseSex('')).toBe('');
    expect(normaliseSex('   ')).toBe('');
    expect(normaliseSex('Z')).toBeNull();
    expect(normaliseSex('3')).toBeNull();
    expect(normaliseSex('MF')).toBeNull();
  });
});

describe('normaliseIdentifier', () => {
  it('trims, upper-cases and removes spaces and dashes', () => {
    expect(normaliseIdentifier(' ab-12 34 ')).toBe('AB1234');
    expect(normaliseIdentifier('mrn\t00-12')).toBe('MRN0012');
    expect(normaliseIdentifier('A\u00a0B\u2013C')).toBe('ABC');
  });

  it('keeps leading zeros', () => {
    expect(normaliseIdentifier('000123')).toBe('000123');
    expect(normaliseIdentifier('  007')).toBe('007');
  });

  it('keeps other punctuation, which may be significant', () => {
    expect(normaliseIdentifier('A.B/C')).toBe('A.B/C');
  });

  it('returns empty for blank', () => {
    expect(normaliseIdentifier('')).toBe('');
    expect(normaliseIdentifier(' - ')).toBe('');
  });
});
