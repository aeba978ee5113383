/**
 * One raw row to one normalised row, or to `invalid` with every reason. Unusable optional fields
 * (a 7-digit phone, an unknown sex code) become warnings and are left out of matching rather than
 * failing a row that can still be matched on the rest.
 */
import type { NormalisedRow, PersonFields, RawRow, RowProblem } from '../model/index.ts';
import type { Pipeline } from '../pipeline/index.ts';
import {
  nonLatinScript,
  normaliseIdentifier,
  normaliseName,
  normalisePhone,
  normaliseSex,
  normaliseState,
  normaliseStreet,
  normaliseZip,
  parseBirthDate,
  splitFullName,
  splitSuffix,
} from '../normalise/index.ts';

export function normaliseRow(raw: RawRow, pipeline: Pipeline, today: string): NormalisedRow {
  const f = raw.fields;
  const problems: RowProblem[] = [];
  const warnings: RowProblem[] = [];
  const cell = (k: keyof RawRow['fields']) => (f[k] ?? '').trim();

  let given: string;
  let middle: string;
  let family: string;
  let suffix = '';
  const fullNameMode = pipeline.columns.fullName !== undefined && !(pipeline.columns.given && pipeline.columns.family);
  if (fullNameMode) {
    ({ given, middle, family, suffix } = splitFullName(cell('fullName')));
  } else {
    const g = splitSuffix(normaliseName(cell('given')));
    const fam = splitSuffix(normaliseName(cell('family')));
    given = g.name;
    family = fam.name;
    middle = normaliseName(cell('middle'));
    suffix = fam.suffix || g.suffix;
  }
  const suffixCell = cell('suffix');
  if (suffixCell !== '') {
    const s = splitSuffix(`X ${normaliseName(suffixCell)}`).suffix;
    if (s !== '') suffix = s;
    else warnings.push({ field: 'suffix', code: 'unrecognised', message: 'suffix is not JR, SR, II, III or IV; ignored' });
  }
  // Letters of another script fold to nothing: say so, rather than call a written name blank.
  const nameCells: [RowProblem['field'], string, string][] = fullNameMode
    ? [['fullName', cell('fullName'), `${given}${family}`]]
    : [['given', cell('given'), given], ['family', cell('family'), family], ['middle', cell('middle'), middle]];
  const unsupported = new Set<RowProblem['field']>();
  for (const [field, text, folded] of nameCells) {
    const script = nonLatinScript(text);
    if (script === undefined) continue;
    const label = field === 'fullName' ? 'name' : `${field} name`;
    const what = `${label} is in ${script} script; names are matched in Latin letters, so send it transliterated`;
    if (folded === '' && field !== 'middle') {
      problems.push({ field, code: 'unsupported_script', message: what });
      unsupported.add(field === 'fullName' ? 'given' : field).add(field === 'fullName' ? 'family' : field);
    } else warnings.push({ field, code: 'unsupported_script', message: `${label} has letters in ${script} script, left out of matching` });
  }
  if (given === '' && !unsupported.has('given')) problems.push({ field: 'given', code: 'missing', message: 'given name is blank' });
  if (family === '' && !unsupported.has('family')) problems.push({ field: 'family', code: 'missing', message: 'family name is blank' });

  const dob = parseBirthDate(cell('birthDate'), pipeline.dates.birthDate, today);
  if (!dob.ok) problems.push({ field: 'birthDate', code: dob.code, message: dob.message });

  if (raw.recordId === '') problems.push({ field: 'recordId', code: 'missing', message: 'record id is blank' });

  const sex = normaliseSex(cell('sex'));
  if (sex === null) warnings.push({ field: 'sex', code: 'unrecognised', message: 'sex code not recognised; ignored' });
  const zip = normaliseZip(cell('zip'));
  if (zip === null) warnings.push({ field: 'zip', code: 'malformed', message: 'ZIP is not 5 or 9 digits; ignored' });
  const phone = normalisePhone(cell('phone'));
  if (phone === null) warnings.push({ field: 'phone', code: 'malformed', message: 'phone is not a 10-digit number; ignored' });
  const state = normaliseState(cell('state'));
  if (state === null) warnings.push({ field: 'state', code: 'unrecognised', message: 'state is not a US state; ignored' });

  if (problems.length > 0) return { kind: 'invalid', line: raw.line, index: raw.index, recordId: raw.recordId, problems };

  const person: PersonFields = {
    given,
    middle,
    family,
    suffix,
    birthDate: dob.ok ? dob.value : '',
    sex: sex ?? '',
    street: normaliseStreet(`${cell('street')} ${cell('street2')}`.trim()),
    city: normaliseName(cell('city')),
    state: state ?? '',
    zip: zip ?? '',
    phone: phone ?? '',
  };
  const row: NormalisedRow = { kind: 'valid', line: raw.line, index: raw.index, recordId: raw.recordId, person, warnings };
  if (pipeline.identifier) row.identifier = { system: pipeline.identifier.system, value: normaliseIdentifier(raw.recordId) };
  return row;
}
