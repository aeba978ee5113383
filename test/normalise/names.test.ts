import { describe, it, expect } from 'vitest';
import { normaliseName, normaliseSuffix, splitFullName, splitSuffix } from '../../src/normalise/index.ts';

describe('normaliseName', () => {
  it('folds diacritics so JOSÉ and JOSE compare equal', () => {
    expect(normaliseName('José')).toBe('JOSE');
    expect(normaliseName('MÜLLER')).toBe('MULLER');
    expect(normaliseName('Peña')).toBe('PENA');
    expect(normaliseName('Çelik')).toBe('CELIK');
  });

  it('folds accents that arrive already decomposed (combining marks)', () => {
    expect(normaliseName('Jose\u0301')).toBe('JOSE');
  });

  it('transliterates letters that Unicode does not decompose', () => {
    expect(normaliseName('Straße')).toBe('STRASSE');
    expect(normaliseName('Æsa')).toBe('AESA');
    expect(normaliseName('Søren')).toBe('SOREN');
    expect(normaliseName('Łukasz')).toBe('LUKASZ');
    expect(normaliseName('Đorđe')).toBe('DORDE');
  });

  it('folds full-width letters from East Asian spreadsheets', () => {
    expect(normaliseName('Ｔａｎａｋａ')).toBe('TANAKA');
  });

  it("joins across apostrophes, straight or curly, so O'BRIEN is OBRIEN", () => {
    expect(normaliseName("O'Brien")).toBe('OBRIEN');
    expect(normaliseName('O\u2019Neil')).toBe('ONEIL');
    expect(normaliseName('O\u2018Neil')).toBe('ONEIL');
    expect(normaliseName('D`Angelo')).toBe('DANGELO');
    expect(normaliseName('Kamakaʻala')).toBe('KAMAKAALA');
  });

  it('drops periods without inserting a space', () => {
    expect(normaliseName('St. John')).toBe('ST JOHN');
    expect(normaliseName('J.R.')).toBe('JR');
  });

  it('turns hyphens, commas, slashes and other punctuation into single spaces', () => {
    expect(normaliseName('Mary-Kate')).toBe('MARY KATE');
    expect(normaliseName('Smith,John')).toBe('SMITH JOHN');
    expect(normaliseName('Ana/Maria')).toBe('ANA MARIA');
    expect(normaliseName('Lee (Li)')).toBe('LEE LI');
    expect(normaliseName('Jean\u2013Luc')).toBe('JEAN LUC');
  });

  it('keeps multi-word family names as separate words without joining them', () => {
    expect(normaliseName('  de la  Cruz ')).toBe('DE LA CRUZ');
    expect(normaliseName('Van der Berg')).toBe('VAN DER BERG');
    expect(normaliseName('Mc Donald')).toBe('MC DONALD');
  });

  it('treats tabs, NBSP and other Unicode spaces as separators and collapses them', () => {
    expect(normaliseName('Ana\tMaria')).toBe('ANA MARIA');
    expect(normaliseName('Ana\u00a0\u00a0Maria')).toBe('ANA MARIA');
    expect(normaliseName('\u2003Ana\u3000Maria\u00a0')).toBe('ANA MARIA');
  });

  it('drops digits, which in a name cell are typos or junk', () => {
    expect(normaliseName('Smith2')).toBe('SMITH');
    expect(normaliseName('Jo3hn')).toBe('JOHN');
    expect(normaliseName('123')).toBe('');
  });

  it('returns empty for empty, blank and punctuation-only cells', () => {
    expect(normaliseName('')).toBe('');
    expect(normaliseName('   ')).toBe('');
    expect(normaliseName('--..!!')).toBe('');
    expect(normaliseName("'")).toBe('');
  });

  it('turns scripts it cannot transliterate into separators rather than garbage', () => {
    expect(normaliseName('李')).toBe('');
    expect(normaliseName('Li 李 Wei')).toBe('LI WEI');
  });

  it('returns already-normal input unchanged and is idempotent', () => {
    const clean = 'DE LA CRUZ';
    expect(normaliseName(clean)).toBe(clean);
    for (const raw of ["O'Brien-Smith", ' José  María ', 'ST. JOHN', 'a\tb']) {
      const once = normaliseName(raw);
      expect(normaliseName(once)).toBe(once);
    }
  });

  it('trims trailing separators from otherwise clean input', () => {
    expect(normaliseName('SMITH ')).toBe('SMITH');
    expect(normaliseName('SMITH.')).toBe('SMITH');
  });
});

describe('splitSuffix', () => {
  it('splits a trailing suffix and canonicalises it', () => {
    expect(splitSuffix('SMITH JR')).toEqual({ name: 'SMITH', suffix: 'JR' });
    expect(splitSuffix('Smith, Jr.')).toEqual({ name: 'SMITH', suffix: 'JR' });
    expect(splitSuffix('Smith Junior')).toEqual({ name: 'SMITH', suffix: 'JR' });
    expect(splitSuffix('Brown Senior')).toEqual({ name: 'BROWN', suffix: 'SR' });
    expect(splitSuffix('Brown Sr.')).toEqual({ name: 'BROWN', suffix: 'SR' });
  });

  it('recognises roman and ordinal generations, including digits that names would drop', () => {
    expect(splitSuffix('SMITH II')).toEqual({ name: 'SMITH', suffix: 'II' });
    expect(splitSuffix('SMITH III')).toEqual({ name: 'SMITH', suffix: 'III' });
    expect(splitSuffix('SMITH IV')).toEqual({ name: 'SMITH', suffix: 'IV' });
    expect(splitSuffix('Smith 2nd')).toEqual({ name: 'SMITH', suffix: 'II' });
    expect(splitSuffix('John Smith 3rd')).toEqual({ name: 'JOHN SMITH', suffix: 'III' });
  });

  it('keeps JUNIOR alone as a name, since it is a real first name', () => {
    expect(splitSuffix('JUNIOR')).toEqual({ name: 'JUNIOR', suffix: '' });
    expect(splitSuffix('Senior')).toEqual({ name: 'SENIOR', suffix: '' });
  });

  it('treats a standalone abbreviation as a suffix with no name', () => {
    expect(splitSuffix('Jr.')).toEqual({ name: '', suffix: 'JR' });
    expect(splitSuffix('III')).toEqual({ name: '', suffix: 'III' });
  });

  it('leaves names without a suffix alone, including ones that merely contain the letters', () => {
    expect(splitSuffix('LEE')).toEqual({ name: 'LEE', suffix: '' });
    expect(splitSuffix('JR SMITH')).toEqual({ name: 'JR SMITH', suffix: '' });
    expect(splitSuffix('SMITHJR')).toEqual({ name: 'SMITHJR', suffix: '' });
    expect(splitSuffix('IVY CHEN')).toEqual({ name: 'IVY CHEN', suffix: '' });
    expect(splitSuffix('')).toEqual({ name: '', suffix: '' });
  });

  it('returns a normalised name even from raw input', () => {
    expect(splitSuffix("O'Neil-Peña Jr")).toEqual({ name: 'ONEIL PENA', suffix: 'JR' });
  });
});

describe('normaliseSuffix', () => {
  it('canonicalises a suffix column, where JUNIOR can only mean JR', () => {
    expect(normaliseSuffix('Jr.')).toBe('JR');
    expect(normaliseSuffix('junior')).toBe('JR');
    expect(normaliseSuffix('3rd')).toBe('III');
    expect(normaliseSuffix(' ')).toBe('');
    expect(normaliseSuffix('MD')).toBeNull();
  });
});

describe('splitFullName', () => {
  it('reads "LAST, FIRST MIDDLE"', () => {
    expect(splitFullName('Smith, John A')).toEqual({ given: 'JOHN', middle: 'A', family: 'SMITH', suffix: '' });
    expect(splitFullName('SMITH, JOHN ANDREW PAUL')).toEqual({ given: 'JOHN', middle: 'ANDREW PAUL', family: 'SMITH', suffix: '' });
  });

  it('reads "FIRST MIDDLE LAST"', () => {
    expect(splitFullName('John A. Smith')).toEqual({ given: 'JOHN', middle: 'A', family: 'SMITH', suffix: '' });
    expect(splitFullName('John Smith')).toEqual({ given: 'JOHN', middle: '', family: 'SMITH', suffix: '' });
  });

  it('finds the suffix after the family name, after the given name, or in its own comma part', () => {
    const expected = { given: 'JOHN', middle: '', family: 'SMITH', suffix: 'JR' };
    expect(splitFullName('SMITH JR, JOHN')).toEqual(expected);
    expect(splitFullName('Smith, John Jr.')).toEqual(expected);
    expect(splitFullName('Smith, John, Jr.')).toEqual(expected);
    expect(splitFullName('John Smith Jr.')).toEqual(expected);
    expect(splitFullName('John Smith 3rd').suffix).toBe('III');
  });

  it('keeps a hyphenated given name as the given name, not a given plus middle', () => {
    expect(splitFullName('Mary-Kate Olsen')).toEqual({ given: 'MARY KATE', middle: '', family: 'OLSEN', suffix: '' });
    expect(splitFullName('Olsen, Mary-Kate')).toEqual({ given: 'MARY KATE', middle: '', family: 'OLSEN', suffix: '' });
  });

  it('keeps family-name particles with the family name', () => {
    expect(splitFullName('Maria de la Cruz')).toEqual({ given: 'MARIA', middle: '', family: 'DE LA CRUZ', suffix: '' });
    expect(splitFullName('Ludwig van der Berg')).toEqual({ given: 'LUDWIG', middle: '', family: 'VAN DER BERG', suffix: '' });
    expect(splitFullName('Ronald Mc Donald')).toEqual({ given: 'RONALD', middle: '', family: 'MC DONALD', suffix: '' });
    expect(splitFullName('Ana Maria de Souza').family).toBe('DE SOUZA');
    expect(splitFullName('Ana Maria de Souza').middle).toBe('MARIA');
    expect(splitFullName('De La Cruz, Maria')).toEqual({ given: 'MARIA', middle: '', family: 'DE LA CRUZ', suffix: '' });
  });

  it('keeps a Spanish "X y Y" double family name together', () => {
    expect(splitFullName('Juan Garcia y Lopez').family).toBe('GARCIA Y LOPEZ');
    expect(splitFullName('John Y Smith')).toEqual({ given: 'JOHN', middle: 'Y', family: 'SMITH', suffix: '' });
  });

  it('never takes the given name as a particle', () => {
    expect(splitFullName('De Smith')).toEqual({ given: 'DE', middle: '', family: 'SMITH', suffix: '' });
  });

  it('treats JUNIOR opening the cell as a given name', () => {
    expect(splitFullName('Junior Smith')).toEqual({ given: 'JUNIOR', middle: '', family: 'SMITH', suffix: '' });
    expect(splitFullName('Smith, Junior')).toEqual({ given: 'JUNIOR', middle: '', family: 'SMITH', suffix: '' });
    expect(splitFullName('Smith, John, Junior')).toEqual({ given: 'JOHN', middle: '', family: 'SMITH', suffix: 'JR' });
    expect(splitFullName('Smith, Jr')).toEqual({ given: '', middle: '', family: 'SMITH', suffix: 'JR' });
  });

  it("folds curly apostrophes and accents in each part", () => {
    expect(splitFullName('José O\u2019Neil')).toEqual({ given: 'JOSE', middle: '', family: 'ONEIL', suffix: '' });
  });

  it('puts a single word in the family name', () => {
    expect(splitFullName('Smith')).toEqual({ given: '', middle: '', family: 'SMITH', suffix: '' });
  });

  it('handles blank, punctuation-only and half-empty cells', () => {
    const empty = { given: '', middle: '', family: '', suffix: '' };
    expect(splitFullName('')).toEqual(empty);
    expect(splitFullName(' - ')).toEqual(empty);
    expect(splitFullName(', John')).toEqual({ given: 'JOHN', middle: '', family: '', suffix: '' });
    expect(splitFullName('Smith,')).toEqual({ given: '', middle: '', family: 'SMITH', suffix: '' });
  });

  it('splits on tabs and NBSP as well as spaces', () => {
    expect(splitFullName('John\u00a0A\tSmith')).toEqual({ given: 'JOHN', middle: 'A', family: 'SMITH', suffix: '' });
  });
});

describe('normaliseName against a reference implementation', () => {
  // The production loop avoids building strings for input that is already normal; a plain
  // map-join-collapse version must agree with it on arbitrary mixes of the tricky characters.
  const REPLACEMENT: Record<string, string> = {
    a: 'A', B: 'B', z: 'Z', Y: 'Y', ' ': ' ', '\t': ' ', '\u00a0': ' ', '-': ' ', ',': ' ', '/': ' ',
    "'": '', '.': '', '\u2019': '', '7': '', 'é': 'E', 'ß': 'SS', 'Ø': 'O', '#': ' ',
  };
  const ALPHABET = Object.keys(REPLACEMENT);
  const reference = (raw: string): string =>
    [...raw].map((ch) => REPLACEMENT[ch]).join('').replace(/ +/g, ' ').trim();

  it('agrees on 5,000 random strings', () => {
    let seed = 12345;
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let n = 0; n < 5000; n++) {
      const length = Math.floor(next() * 12);
      let raw = '';
      for (let i = 0; i < length; i++) raw += ALPHABET[Math.floor(next() * ALPHABET.length)];
      expect(normaliseName(raw), JSON.stringify(raw)).toBe(reference(raw));
    }
  });
});
