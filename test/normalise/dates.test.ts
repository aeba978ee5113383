import { describe, it, expect } from 'vitest';
import { parseBirthDate } from '../../src/normalise/index.ts';

const TODAY = '2025-06-15';

function ok(raw: string, formats: readonly string[], today = TODAY): string {
  const r = parseBirthDate(raw, formats, today);
  if (!r.ok) throw new Error(`expected ok, got ${r.code}: ${r.message}`);
  return r.value;
}

function code(raw: string, formats: readonly string[], today = TODAY): string {
  const r = parseBirthDate(raw, formats, today);
  return r.ok ? `ok:${r.value}` : r.code;
}

describe('parseBirthDate', () => {
  it('reads each supported format token', () => {
    expect(ok('04/03/2012', ['MM/DD/YYYY'])).toBe('2012-04-03');
    expect(ok('4/3/2012', ['M/D/YYYY'])).toBe('2012-04-03');
    expect(ok('20120403', ['YYYYMMDD'])).toBe('2012-04-03');
    expect(ok('2012-04-03', ['YYYY-MM-DD'])).toBe('2012-04-03');
    expect(ok('03.04.2012', ['DD.MM.YYYY'])).toBe('2012-04-03');
    expect(ok('04-03-2012', ['MM-DD-YYYY'])).toBe('2012-04-03');
    expect(ok('4/3/12', ['M/D/YY'])).toBe('2012-04-03');
  });

  it('accepts a dropped leading zero where a separator bounds the field', () => {
    expect(ok('4/3/2012', ['MM/DD/YYYY'])).toBe('2012-04-03');
    expect(ok('12/25/2012', ['M/D/YYYY'])).toBe('2012-12-25');
  });

  it('requires exact widths where fields abut, so a short undelimited date is not guessed', () => {
    expect(code('2012043', ['YYYYMMDD'])).toBe('unparseable');
    expect(code('201204031', ['YYYYMMDD'])).toBe('unparseable');
  });

  it('accepts an ISO date-time and the time Excel appends', () => {
    expect(ok('2012-04-03T00:00:00', ['YYYY-MM-DD'])).toBe('2012-04-03');
    expect(ok('2012-04-03T00:00:00.000Z', ['YYYY-MM-DD'])).toBe('2012-04-03');
    expect(ok('2012-04-03T00:00:00-05:00', ['YYYY-MM-DD'])).toBe('2012-04-03');
    expect(ok('4/3/2012 0:00', ['M/D/YYYY'])).toBe('2012-04-03');
    expect(ok('4/3/2012 12:00:00 AM', ['M/D/YYYY'])).toBe('2012-04-03');
  });

  it('rejects trailing text that is not a time', () => {
    expect(code('2012-04-03x', ['YYYY-MM-DD'])).toBe('unparseable');
    expect(code('2012-04-03 12', ['YYYY-MM-DD'])).toBe('unparseable');
  });

  it('reads month names for MMM', () => {
    expect(ok('03-APR-2012', ['DD-MMM-YYYY'])).toBe('2012-04-03');
    expect(ok('03-Sept-2012', ['DD-MMM-YYYY'])).toBe('2012-09-03');
    expect(code('03-XYZ-2012', ['DD-MMM-YYYY'])).toBe('unparseable');
  });

  it('trims whitespace including tabs and NBSP', () => {
    expect(ok('  04/03/2012\t', ['MM/DD/YYYY'])).toBe('2012-04-03');
    expect(ok('\u00a02012-04-03\u00a0', ['YYYY-MM-DD'])).toBe('2012-04-03');
  });

  it('tries formats in order and takes the first that gives a real date', () => {
    expect(ok('13/01/2015', ['MM/DD/YYYY', 'DD/MM/YYYY'])).toBe('2015-01-13');
    expect(ok('03/04/2015', ['MM/DD/YYYY', 'DD/MM/YYYY'])).toBe('2015-03-04');
    expect(ok('20150103', ['MM/DD/YYYY', 'YYYYMMDD'])).toBe('2015-01-03');
  });

  it('keeps separators strict so one order is not read with another order\'s separator', () => {
    expect(ok('04-03-2012', ['DD.MM.YYYY', 'MM-DD-YYYY'])).toBe('2012-04-03');
    expect(code('04-03-2012', ['MM/DD/YYYY'])).toBe('unparseable');
  });

  it('reports dates that match a format but are not on the calendar as impossible', () => {
    expect(code('02/30/2015', ['MM/DD/YYYY'])).toBe('impossible');
    expect(code('13/01/2015', ['MM/DD/YYYY'])).toBe('impossible');
    expect(code('00/10/2015', ['MM/DD/YYYY'])).toBe('impossible');
    expect(code('04/31/2015', ['MM/DD/YYYY'])).toBe('impossible');
    expect(code('04/00/2015', ['MM/DD/YYYY'])).toBe('impossible');
  });

  it('knows leap years, including the century rules', () => {
    expect(code('2015-02-29', ['YYYY-MM-DD'])).toBe('impossible');
    expect(ok('2016-02-29', ['YYYY-MM-DD'])).toBe('2016-02-29');
    expect(ok('2000-02-29', ['YYYY-MM-DD'])).toBe('2000-02-29');
    expect(code('1900-02-29', ['YYYY-MM-DD'])).toBe('impossible');
  });

  it('pivots two-digit years so the date is not in the future', () => {
    expect(ok('4/3/30', ['M/D/YY'])).toBe('1930-04-03');
    expect(ok('6/15/25', ['M/D/YY'])).toBe('2025-06-15'); // today itself is allowed
    expect(ok('6/16/25', ['M/D/YY'])).toBe('1925-06-16'); // tomorrow would be the future
    expect(ok('1/1/00', ['M/D/YY'])).toBe('2000-01-01');
    expect(ok('12/31/99', ['M/D/YY'])).toBe('1999-12-31');
  });

  it('reports blank as missing', () => {
    expect(code('', ['MM/DD/YYYY'])).toBe('missing');
    expect(code('   \t', ['MM/DD/YYYY'])).toBe('missing');
  });

  it('reports text matching no format as unparseable', () => {
    expect(code('unknown', ['MM/DD/YYYY'])).toBe('unparseable');
    expect(code('2012-04-03', ['MM/DD/YYYY'])).toBe('unparseable');
    expect(code('4/3/2012', ['M/D/YY'])).toBe('unparseable');
    expect(code('2012-04-03', [])).toBe('unparseable');
  });

  it('reports dates after today as future', () => {
    expect(code('2025-06-16', ['YYYY-MM-DD'])).toBe('future');
    expect(code('2025-06-15', ['YYYY-MM-DD'])).toBe('ok:2025-06-15');
  });

  it('reports dates before 1900 as too old', () => {
    expect(code('1899-12-31', ['YYYY-MM-DD'])).toBe('too_old');
    expect(code('1900-01-01', ['YYYY-MM-DD'])).toBe('ok:1900-01-01');
  });

  it('writes messages that name the format but never contain the value', () => {
    const values = ['02/30/2015', 'garbage-123', '2099-01-01', '1850-05-05'];
    for (const v of values) {
      const r = parseBirthDate(v, ['MM/DD/YYYY', 'YYYY-MM-DD'], TODAY);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.message).not.toContain(v);
        expect(r.message).not.toMatch(/2015|2099|1850|garbage/);
        expect(r.message).toMatch(/^birth date /);
      }
    }
    const impossible = parseBirthDate('02/30/2015', ['MM/DD/YYYY'], TODAY);
    expect(impossible).toEqual({
      ok: false,
      code: 'impossible',
      message: 'birth date is not a real calendar date (format MM/DD/YYYY)',
    });
  });
});
