import { describe, it, expect } from 'vitest';
import { houseNumber, normaliseStreet } from '../../src/normalise/index.ts';

describe('normaliseStreet', () => {
  it('produces the model example from a typical roster spelling', () => {
    expect(normaliseStreet('12 North Oak Street, Apt. #4')).toBe('12 N OAK ST APT 4');
  });

  it('abbreviates the common USPS street suffixes', () => {
    const cases: Array<[string, string]> = [
      ['STREET', 'ST'], ['AVENUE', 'AVE'], ['ROAD', 'RD'], ['DRIVE', 'DR'], ['LANE', 'LN'],
      ['BOULEVARD', 'BLVD'], ['COURT', 'CT'], ['CIRCLE', 'CIR'], ['PLACE', 'PL'], ['TERRACE', 'TER'],
      ['PARKWAY', 'PKWY'], ['HIGHWAY', 'HWY'], ['TRAIL', 'TRL'], ['WAY', 'WAY'], ['SQUARE', 'SQ'],
      ['ALLEY', 'ALY'], ['CENTER', 'CTR'], ['CRESCENT', 'CRES'], ['CROSSING', 'XING'], ['EXPRESSWAY', 'EXPY'],
      ['FREEWAY', 'FWY'], ['GARDENS', 'GDNS'], ['GROVE', 'GRV'], ['HEIGHTS', 'HTS'], ['HOLLOW', 'HOLW'],
      ['JUNCTION', 'JCT'], ['LOOP', 'LOOP'], ['MANOR', 'MNR'], ['MEADOWS', 'MDWS'], ['PLAZA', 'PLZ'],
      ['POINT', 'PT'], ['RIDGE', 'RDG'], ['ROUTE', 'RTE'], ['RUN', 'RUN'], ['TURNPIKE', 'TPKE'],
      ['VALLEY', 'VLY'], ['VIEW', 'VW'], ['VILLAGE', 'VLG'], ['CREEK', 'CRK'], ['COVE', 'CV'],
      ['ESTATES', 'ESTS'], ['LANDING', 'LNDG'], ['PATH', 'PATH'], ['PIKE', 'PIKE'], ['SPRINGS', 'SPGS'],
    ];
    expect(cases.length).toBeGreaterThanOrEqual(40);
    for (const [word, abbr] of cases) expect(normaliseStreet(`10 Maple ${word}`), word).toBe(`10 MAPLE ${abbr}`);
  });

  it('accepts common misspellings and variants of suffixes', () => {
    expect(normaliseStreet('1 Main Str')).toBe('1 MAIN ST');
    expect(normaliseStreet('1 Main Strt')).toBe('1 MAIN ST');
    expect(normaliseStreet('1 Main Av')).toBe('1 MAIN AVE');
    expect(normaliseStreet('1 Main Avn')).toBe('1 MAIN AVE');
    expect(normaliseStreet('1 Main Ave.')).toBe('1 MAIN AVE');
    expect(normaliseStreet('1 Main Blv')).toBe('1 MAIN BLVD');
    expect(normaliseStreet('1 Main Crt')).toBe('1 MAIN CT');
  });

  it('abbreviates only the last suffix word, leaving street names that are suffix words', () => {
    expect(normaliseStreet('12 Court Street')).toBe('12 COURT ST');
    expect(normaliseStreet('10 Lake Shore Drive')).toBe('10 LAKE SHORE DR');
    expect(normaliseStreet('12 Park Avenue')).toBe('12 PARK AVE');
    expect(normaliseStreet('12 Avenue B')).toBe('12 AVENUE B');
    expect(normaliseStreet('12 Park')).toBe('12 PARK');
  });

  it('abbreviates a route word followed by its number', () => {
    expect(normaliseStreet('500 Highway 9')).toBe('500 HWY 9');
    expect(normaliseStreet('500 County Road 12')).toBe('500 COUNTY RD 12');
  });

  it('abbreviates pre- and post-directionals', () => {
    expect(normaliseStreet('12 North Main Street')).toBe('12 N MAIN ST');
    expect(normaliseStreet('12 Main Street North')).toBe('12 MAIN ST N');
    expect(normaliseStreet('100 Park Avenue South')).toBe('100 PARK AVE S');
    expect(normaliseStreet('5 Southwest 8th Street')).toBe('5 SW 8TH ST');
    expect(normaliseStreet('1600 Pennsylvania Avenue Northwest')).toBe('1600 PENNSYLVANIA AVE NW');
    expect(normaliseStreet('5 E. 3rd St. N.W.')).toBe('5 E 3RD ST NW');
  });

  it('keeps a directional that is the street name itself', () => {
    expect(normaliseStreet('12 North Street')).toBe('12 NORTH ST');
    expect(normaliseStreet('12 West')).toBe('12 WEST');
  });

  it('keeps ordinals as written', () => {
    expect(normaliseStreet('5 1st Ave')).toBe('5 1ST AVE');
    expect(normaliseStreet('5 West 42nd Street')).toBe('5 W 42ND ST');
  });

  it('standardises secondary unit designators', () => {
    expect(normaliseStreet('1 Main St Apartment 4')).toBe('1 MAIN ST APT 4');
    expect(normaliseStreet('1 Main St Suite 200')).toBe('1 MAIN ST STE 200');
    expect(normaliseStreet('1 Main St Building C')).toBe('1 MAIN ST BLDG C');
    expect(normaliseStreet('1 Main St Floor 3')).toBe('1 MAIN ST FL 3');
    expect(normaliseStreet('1 Main St Room 12')).toBe('1 MAIN ST RM 12');
    expect(normaliseStreet('1 Main St Unit 7')).toBe('1 MAIN ST UNIT 7');
    expect(normaliseStreet('1 Main St Trailer 5')).toBe('1 MAIN ST TRLR 5');
    expect(normaliseStreet('1 Main St Lot #5')).toBe('1 MAIN ST LOT 5');
  });

  it('reads TRAILER and LOT as units only before a number', () => {
    expect(normaliseStreet('77 Oak Trailer Park Lot 9')).toBe('77 OAK TRAILER PARK LOT 9');
    expect(normaliseStreet('77 Oak Trailer Park Road')).toBe('77 OAK TRAILER PARK RD');
    expect(normaliseStreet('8 Parking Lot Lane')).toBe('8 PARKING LOT LN');
  });

  it('turns "#" into APT unless a designator already precedes it', () => {
    expect(normaliseStreet('1 Main St #4')).toBe('1 MAIN ST APT 4');
    expect(normaliseStreet('1 Main St # 4B')).toBe('1 MAIN ST APT 4B');
    expect(normaliseStreet('1 Main St Apt #4')).toBe('1 MAIN ST APT 4');
    expect(normaliseStreet('1 Main St Ste. #200')).toBe('1 MAIN ST STE 200');
    expect(normaliseStreet('1 Main St Unit No. 5')).toBe('1 MAIN ST UNIT 5');
  });

  it('splits a designator glued to its number', () => {
    expect(normaliseStreet('1 Main St APT4B')).toBe('1 MAIN ST APT 4B');
    expect(normaliseStreet('1 Main St Ste200')).toBe('1 MAIN ST STE 200');
  });

  it('does not abbreviate the suffix of a unit part, nor read a unit as the street suffix', () => {
    expect(normaliseStreet('1 Main Street Apt 4 North')).toBe('1 MAIN ST APT 4 NORTH');
  });

  it('does not mistake Sainte for a suite', () => {
    expect(normaliseStreet('12 Ste Genevieve Avenue')).toBe('12 STE GENEVIEVE AVE');
  });

  it('standardises PO BOX variants', () => {
    for (const raw of ['P.O. Box 123', 'PO Box 123', 'P O Box 123', 'P. O. Box 123', 'POB 123', 'Post Office Box 123', 'POBox 123', 'Box 123', 'PO 123']) {
      expect(normaliseStreet(raw), raw).toBe('PO BOX 123');
    }
  });

  it('standardises rural routes', () => {
    expect(normaliseStreet('Rural Route 2 Box 5')).toBe('RR 2 BOX 5');
    expect(normaliseStreet('R.R. 2 Box 5')).toBe('RR 2 BOX 5');
  });

  it('keeps fractional and hyphenated house numbers intact', () => {
    expect(normaliseStreet('12 1/2 Main Street')).toBe('12 1/2 MAIN ST');
    expect(normaliseStreet('123-45 Queens Boulevard')).toBe('123-45 QUEENS BLVD');
  });

  it('folds diacritics, apostrophes and odd whitespace like names do', () => {
    expect(normaliseStreet('7\u00a0Calle\tPeña')).toBe('7 CALLE PENA');
    expect(normaliseStreet("9 O\u2019Connell Street")).toBe('9 OCONNELL ST');
  });

  it('returns empty for empty and punctuation-only lines', () => {
    expect(normaliseStreet('')).toBe('');
    expect(normaliseStreet('   ')).toBe('');
    expect(normaliseStreet('###')).toBe('');
    expect(normaliseStreet(',.-')).toBe('');
  });

  it('is idempotent', () => {
    for (const raw of ['12 North Oak Street, Apt. #4', 'P.O. Box 9', '12 1/2 Main St', '500 Highway 9 Unit 3']) {
      const once = normaliseStreet(raw);
      expect(normaliseStreet(once), raw).toBe(once);
    }
  });
});

describe('houseNumber', () => {
  it('returns the leading digits of a normalised street line', () => {
    expect(houseNumber('12 N OAK ST APT 4')).toBe('12');
    expect(houseNumber('12B MAIN ST')).toBe('12');
    expect(houseNumber('123-45 QUEENS BLVD')).toBe('123');
  });

  it('returns empty when the line has no leading number', () => {
    expect(houseNumber('PO BOX 12')).toBe('');
    expect(houseNumber('MAIN ST')).toBe('');
    expect(houseNumber('')).toBe('');
  });
});
