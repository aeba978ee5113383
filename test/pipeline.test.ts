import fs from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { loadPartnerPipeline, parsePipeline } from '../src/pipeline/index.ts';

const VALID = `
partner: p1
displayName: P One
columns:
  recordId: [id]
  given: first
  family: [last]
  birthDate: [dob]
group: { id: p1-group, name: P One, mode: replace }
`;

describe('pipeline files', () => {
  it('applies documented defaults', () => {
    const p = parsePipeline(VALID, 'p1.yaml');
    expect(p.file).toEqual({ namePattern: '*', encoding: 'utf-8', delimiter: ',' });
    expect(p.columns.given).toEqual(['first']);
    expect(p.thresholds).toEqual({ match: 18, possible: 6 });
    expect(p.dates.birthDate).toEqual(['YYYY-MM-DD']);
  });

  it.each([
    ['an unknown key', `${VALID}colums: {}\n`, /PIPELINE_INVALID: \(top level\): .*colums/],
    ['a bad mode', VALID.replace('mode: replace', 'mode: merge'), /field "group\.mode"/],
    ['an unknown encoding', `${VALID}file: { encoding: latin-9 }\n`, /field "file\.encoding"/],
    ['no birth date column', VALID.replace('  birthDate: [dob]\n', ''), /columns\.birthDate is required/],
    ['thresholds upside down', `${VALID}thresholds: { match: 5, possible: 10 }\n`, /thresholds: possible must not be above match/],
    ['an unknown logical field', VALID.replace('recordId: [id]', 'recordId: [id]\n  shoeSize: [shoe]'), /columns: .*shoeSize/],
    ['a bad date format', `${VALID}dates: { birthDate: ['YYYY-QQ-DD'] }\n`, /dates\.birthDate\.0/],
    ['broken YAML', 'partner: [p1\n', /PIPELINE_INVALID: not valid YAML \(bad\.yaml/],
  ])('names the key for %s', (_label, text, error) => {
    expect(() => parsePipeline(text, 'bad.yaml')).toThrow(error);
  });

  it('loads every shipped pipeline', async () => {
    for (const f of await fs.readdir('pipelines')) {
      const partner = f.replace(/\.yaml$/, '');
      expect((await loadPartnerPipeline('pipelines', partner)).partner).toBe(partner);
    }
  });

  it('refuses a pipeline file that belongs to another partner', async () => {
    await expect(loadPartnerPipeline('pipelines', 'nobody')).rejects.toThrow(/PIPELINE_NOT_FOUND/);
  });
});
