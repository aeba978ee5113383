/**
 * One raw row to one normalised row, or to `invalid` with every reason. A row is invalid only when
 * it cannot identify anyone (no record id; no name and no identifier; no birth date, no identifier
 * and no address or phone either). Anything else that is blank, malformed or a placeholder (a
 * 7-digit phone, a date in no agreed format, BABY BOY) becomes a warning and is left out of
 * matching: missing evidence weighs nothing, and the identity guards keep a row short of evidence
 * from an automatic match.
 */
import type { NormalisedRow, PersonFields, RawRow, RowAction, RowIdentifier, RowProblem } from '../model/index.ts';
import { ACTION_VALUES, type Pipeline } from '../pipeline/index.ts';
import {
  isPlaceholderPhone,
  isPlaceholderStreet,
  NO_ADDITIONS,
  nonLatinScript,
  placeholderNames,
  readIdentifier,
  normaliseBirthOrder,
  normaliseMothersMaiden,
  normaliseStreetLines,
  type PlaceholderAdditions,
  normaliseIdentifier,
  normaliseName,
  normalisePhone,
  normaliseSex,
  normaliseState,
  normaliseZip,
  parseBirthDate,
  splitFullName,
  splitSuffix,
  type BirthDateResult,
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
  const unsupported = new Set<string>();
  for (const [field, text, folded] of nameCells) {
    const script = nonLatinScript(text);
    if (script === undefined) continue;
    const label = field === 'fullName' ? 'name' : `${field} name`;
    const what = `${label} is in ${script} script; names are matched in Latin letters, so send it transliterated`;
    if (folded === '' && field !== 'middle') {
      warnings.push({ field, code: 'unsupported_script', message: `${what}; left out of matching` });
      unsupported.add(script);
    } else warnings.push({ field, code: 'unsupported_script', message: `${label} has letters in ${script} script, left out of matching` });
  }
  const extra = placeholderAdditions(pipeline);
  const placeholder = placeholderNames(given, family, extra);
  for (const field of ['given', 'family'] as const) {
    if (placeholder[field]) warnings.push({ field: fullNameMode ? 'fullName' : field, code: 'placeholder', message: `${field} name is a placeholder (a newborn's, unknown or test name): not evidence, and the row goes to a person` });
  }

  const identifiers = rowIdentifiers(raw, pipeline, extra, warnings);

  // A malformed or impossible birth date is missing evidence, not a lost row: the row can still
  // be found by name, address or identifier and offered to a person.
  const dob = readBirthDate(cell('birthDate'), pipeline.dates.birthDate, (c, formats) => parseBirthDate(c, formats, today));
  if (!dob.ok && dob.code !== 'missing') warnings.push({ field: 'birthDate', code: dob.code, message: `${dob.message}; left out of matching` });

  // A row is lost only when it cannot identify anyone; any other blank weighs nothing.
  const named = (given !== '' && !placeholder.given) || (family !== '' && !placeholder.family);
  if (raw.recordId === '') problems.push({ field: 'recordId', code: 'missing', message: 'record id is blank' });
  if (!named && identifiers.length === 0) {
    const field = fullNameMode ? 'fullName' : 'given';
    const why =
      unsupported.size > 0
        ? `the name is in ${[...unsupported].join(' and ')} script (names are matched in Latin letters: send it transliterated)`
        : given === '' && family === ''
          ? 'the name is blank'
          : 'the name is a placeholder';
    problems.push({ field, code: unsupported.size > 0 ? 'unsupported_script' : 'no_name', message: `${why}, and no identifier: the row cannot identify anyone` });
  }
  const sex = normaliseSex(cell('sex'));
  if (sex === null) warnings.push({ field: 'sex', code: 'unrecognised', message: 'sex code not recognised; ignored' });
  const zip = normaliseZip(cell('zip'));
  if (zip === null) warnings.push({ field: 'zip', code: 'malformed', message: 'ZIP is not 5 or 9 digits; ignored' });
  let phone = normalisePhone(cell('phone'));
  if (phone === null) warnings.push({ field: 'phone', code: 'malformed', message: 'phone is not a 10-digit number; ignored' });
  else if (phone !== '' && isPlaceholderPhone(phone)) {
    warnings.push({ field: 'phone', code: 'placeholder', message: 'phone is a placeholder number; ignored' });
    phone = '';
  }
  const state = normaliseState(cell('state'));
  if (state === null) warnings.push({ field: 'state', code: 'unrecognised', message: 'state is not a US state; ignored' });
  let street = normaliseStreetLines([cell('street'), cell('street2')]);
  if (street !== '' && isPlaceholderStreet(street, extra)) {
    warnings.push({ field: 'street', code: 'placeholder', message: 'street is not an address (general delivery, unknown, homeless); ignored' });
    street = '';
  }

  // Without a birth date, a name needs an identifier, or an address or phone a person can check.
  if (!dob.ok && identifiers.length === 0 && street === '' && !zip && !phone) {
    const why = dob.code === 'missing' ? 'birth date is blank' : dob.message;
    problems.push({ field: 'birthDate', code: dob.code, message: `${why}, and there is no identifier, address or phone either: the row cannot identify anyone` });
  }

  // Cells of columns the pipeline maps (or of PID-6 and PID-25); a file without them, or with them
  // blank, gives the row it gave before: the person carries neither.
  const mothersMaiden = normaliseMothersMaiden(cell('mothersMaidenName'), extra);
  let birthOrder = normaliseBirthOrder(cell('birthOrder'));
  if (birthOrder === null) {
    warnings.push({ field: 'birthOrder', code: 'malformed', message: 'birth order is not a number from 1 to 9; ignored' });
    birthOrder = '';
  }

  const action = rowAction(raw, pipeline, problems);

  if (problems.length > 0) {
    const invalid: NormalisedRow = { kind: 'invalid', line: raw.line, index: raw.index, recordId: raw.recordId, problems };
    if (action) invalid.action = action;
    return invalid;
  }

  const person: PersonFields = {
    given,
    middle,
    family,
    suffix,
    birthDate: dob.ok ? dob.value : '',
    sex: sex ?? '',
    street,
    city: normaliseName(cell('city')),
    state: state ?? '',
    zip: zip ?? '',
    phone: phone ?? '',
  };
  if (mothersMaiden !== '') person.mothersMaiden = mothersMaiden;
  if (birthOrder !== '') person.birthOrder = birthOrder;
  const row: NormalisedRow = { kind: 'valid', line: raw.line, index: raw.index, recordId: raw.recordId, person, identifiers, warnings };
  if (placeholder.given || placeholder.family) row.placeholder = placeholder;
  if (action) row.action = action;
  return row;
}

/**
 * A birth date cell read with the pipeline's formats, then — when none of them reads it and ISO
 * is not among them — as ISO 8601, which every partner may send. `parse` is parseBirthDate with
 * the day to judge it by (the HL7 v2 sample builder reads with its own, to keep future dates).
 */
export function readBirthDate(cell: string, formats: readonly string[], parse: (cell: string, formats: readonly string[]) => BirthDateResult): BirthDateResult {
  const dob = parse(cell, formats);
  if (dob.ok || dob.code !== 'unparseable' || formats.includes('YYYY-MM-DD')) return dob;
  const iso = parse(cell, ['YYYY-MM-DD']);
  return iso.ok || iso.code !== 'unparseable' ? iso : dob;
}

/**
 * What the row asks of the Group (issue 12): every row of a `remove` file is a removal; with an
 * action column, the cell says (ACTION_VALUES), and a cell that says neither makes the row
 * invalid. Rows of other files carry no action.
 */
function rowAction(raw: RawRow, pipeline: Pipeline, problems: RowProblem[]): RowAction | undefined {
  if (pipeline.group.mode === 'remove') return 'remove';
  if (pipeline.columns.action === undefined) return undefined;
  // The cell is not echoed: a misaligned file could put a name in it.
  const cell = (raw.fields.action ?? '').trim();
  const action = Object.hasOwn(ACTION_VALUES, cell.toLowerCase()) ? ACTION_VALUES[cell.toLowerCase()] : undefined;
  if (action) return action;
  problems.push(
    cell === ''
      ? { field: 'action', code: 'missing', message: 'blank; say add (or A) to join the Group, remove (or delete, D) to leave it' }
      : { field: 'action', code: 'unrecognised', message: 'not add, A, remove, delete or D; the row changes nothing' },
  );
  return undefined;
}

/** The record id as an identifier (when the pipeline says it is one), then each identifier column. */
function rowIdentifiers(raw: RawRow, pipeline: Pipeline, extra: PlaceholderAdditions, warnings: RowProblem[]): RowIdentifier[] {
  const out: RowIdentifier[] = [];
  if (pipeline.identifier) {
    const r = readIdentifier('generic', raw.recordId, extra.identifiers);
    if (r.ok && r.value !== '') out.push({ system: pipeline.identifier.system, value: r.value, label: pipeline.identifier.name ?? systemLabel(pipeline.identifier.system) });
  }
  pipeline.identifiers.forEach((spec, i) => {
    const label = spec.name ?? systemLabel(spec.system);
    const cell = raw.identifierCells?.[i];
    // Said on every row, so a renamed header cannot make the identifier silently vanish.
    if (cell === undefined) {
      warnings.push({ field: 'identifier', code: 'no_column', message: `${label}: the file has no column for this identifier` });
      return;
    }
    const r = readIdentifier(spec.kind, cell, extra.identifiers);
    if (!r.ok) warnings.push({ field: 'identifier', code: r.code, message: `${label}: ${r.message}` });
    else if (r.value !== '' && !out.some((x) => x.system === spec.system && x.value === r.value)) {
      out.push(spec.kind === 'generic' ? { system: spec.system, value: r.value, label } : { system: spec.system, value: r.value, label, kind: spec.kind });
    }
  });
  return out;
}

/** "us-ssn" for http://hl7.org/fhir/sid/us-ssn; the OID itself for urn:oid:… */
function systemLabel(system: string): string {
  return system.split(/[/:]/).filter(Boolean).at(-1) ?? system;
}

const additionsCache = new WeakMap<Pipeline, PlaceholderAdditions>();

function placeholderAdditions(pipeline: Pipeline): PlaceholderAdditions {
  if (!pipeline.placeholders) return NO_ADDITIONS;
  let a = additionsCache.get(pipeline);
  if (!a) {
    const p = pipeline.placeholders;
    a = { names: new Set(p.names.map(normaliseName)), streets: new Set(p.streets.map((x) => normaliseStreetLines([x]))), identifiers: new Set(p.identifiers.map(normaliseIdentifier)) };
    additionsCache.set(pipeline, a);
  }
  return a;
}
