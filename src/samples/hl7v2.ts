/**
 * Roster rows as HL7 v2 messages (issue 13): the same people a partner's flat file lists, sent
 * instead as VXU^V04 (Z22) or QBP^Q11 (Z34) messages in an FHS/BHS batch, with the matching
 * hl7v2 pipeline. Each message carries its row's cells as written — a typo, a blank, a date that
 * does not parse stay as they are — so a comparison of the two runs tests the v2 reading side,
 * not this builder. Used by the "same person, same outcome" test and by bench:v2.
 *
 * Where each cell goes: the record id is PID-3 type MR (authority: the partner's facility), each
 * identifier column another PID-3 repetition (SS for an SSN, PI otherwise, authority ID<n>);
 * PID-5 family^given^middle^suffix (type L); PID-7 the birth date as YYYYMMDD when it parses
 * under the pipeline's date formats as normaliseRow reads them, else the cell as written; PID-8
 * sex as written; PID-11 street^street2^city^state^zip^^H; PID-13 the phone in XTN-1 as written.
 * A QBP puts the same values in QPD-3…QPD-9.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { parse } from 'csv-parse';
import { chain, openText } from '../intake/index.ts';
import type { LogicalField } from '../model/index.ts';
import { mapHeader } from '../parse/header.ts';
import { readBirthDate } from '../parse/row.ts';
import { parsePipeline, type Pipeline } from '../pipeline/index.ts';
import { parseBirthDate } from '../normalise/index.ts';
import { headerSegment, message, repeat, segment, type Component, type Field, type Value } from '../hl7v2/encode.ts';

/** One data row of a roster: its cells as the file has them (undecoded only of the file's encoding). */
export interface RosterCells {
  /** 0-based position among data rows: the run's row index and the message's position in the batch. */
  index: number;
  fields: Partial<Record<LogicalField, string>>;
  /** The cell of each of the pipeline's `identifiers`, in their order; undefined when the file has no such column. */
  identifierCells: (string | undefined)[];
}

/**
 * The roster's data rows, cell by cell, read as the parse stage reads them: the file's encoding
 * and delimiter, a BOM dropped, blank lines skipped, the header mapped by the parse stage's own
 * mapHeader. Unlike rosterChunks, nothing is normalised: a message must carry what the file said.
 */
export async function* rosterCells(file: string, pipeline: Pipeline): AsyncGenerator<RosterCells> {
  if (pipeline.format !== 'delimited') throw new Error(`pipeline ${pipeline.partner} is not a roster pipeline`);
  const parser = chain(
    openText(file, pipeline.file.encoding, file),
    parse({ delimiter: pipeline.file.delimiter, skip_empty_lines: false, relax_column_count: true, bom: true, relax_quotes: false }),
  );
  let columns: ReturnType<typeof mapHeader> | undefined;
  let index = 0;
  for await (const record of parser as AsyncIterable<string[]>) {
    if (record.every((c) => c.trim() === '')) continue;
    if (!columns) {
      columns = mapHeader(record, pipeline, file);
      continue;
    }
    const fields: RosterCells['fields'] = {};
    for (const [field, col] of Object.entries(columns.fields) as [LogicalField, number][]) fields[field] = record[col] ?? '';
    yield { index: index++, fields, identifierCells: columns.identifiers.map((c) => (c === undefined ? undefined : (record[c] ?? ''))) };
  }
}

/** The partner's facility (MSH-4, and PID-3's assigning authority of its record ids). */
export function facilityOf(pipeline: Pipeline): string {
  return pipeline.partner.toUpperCase();
}

/** PID-3 type and authority of the roster pipeline's i-th identifier column. */
function identifierType(pipeline: Pipeline, i: number): { type: string; authority: string } {
  const kind = pipeline.identifiers[i]!.kind;
  // No HL7 type says "last four of an SSN": SS with an authority of its own keeps the two apart.
  return { type: kind === 'generic' ? 'PI' : 'SS', authority: `ID${i + 1}` };
}

/**
 * The HL7 v2 pipeline that reads this builder's messages the way `roster` reads its file: same
 * partner, Group, thresholds, model and placeholders; the roster's `identifier.system` as the
 * record id's system and each identifier column as a PID-3 rule. A roster whose record id is
 * named (`identifier.name`) cannot be mirrored: hl7v2.recordId takes no name, so the label in
 * reasons would differ; it is refused rather than compared wrongly. So is a full-name roster:
 * PID-5 has no full-name component, and splitting the cell here would be doing normaliseRow's work.
 */
export function v2PipelineFor(roster: Pipeline, policy: { vxu: 'add' | 'ignore'; qbp: 'add' | 'ignore' }): Pipeline {
  if (roster.format !== 'delimited') throw new Error(`pipeline ${roster.partner} is not a roster pipeline`);
  if (roster.columns.fullName !== undefined && !(roster.columns.given && roster.columns.family)) {
    throw new Error(`pipeline ${roster.partner} reads a full name; PID-5 carries its parts, so its rows cannot be sent as they are`);
  }
  if (roster.identifier?.name) throw new Error(`pipeline ${roster.partner} names its record id (identifier.name); hl7v2.recordId has no name`);
  const facility = facilityOf(roster);
  const spec = {
    partner: roster.partner,
    displayName: roster.displayName,
    format: 'hl7v2',
    file: { namePattern: '*.hl7', encoding: 'utf-8', delimiter: ',' },
    hl7v2: {
      sendingFacility: facility,
      ...policy,
      recordId: { type: 'MR', authority: facility, ...(roster.identifier ? { system: roster.identifier.system } : {}) },
      identifiers: roster.identifiers.map((id, i) => ({ ...identifierType(roster, i), system: id.system, kind: id.kind, ...(id.name ? { name: id.name } : {}) })),
    },
    group: { ...roster.group, mode: 'append' },
    thresholds: roster.thresholds,
    ...(roster.model ? { model: roster.model } : {}),
    ...(roster.placeholders ? { placeholders: roster.placeholders } : {}),
  };
  return parsePipeline(JSON.stringify(spec), `${roster.partner} (hl7v2)`);
}

/**
 * The birth date cell as normaliseRow reads it for `pipeline` — its formats, then ISO as its
 * fallback — as YYYYMMDD, a date in the future or before 1900 included (normaliseRow refuses
 * those, and the v2 side must refuse them for the same reason); undefined when it reads no
 * calendar date from the cell.
 */
export function rosterBirthDate(cell: string, pipeline: Pipeline, today: string): string | undefined {
  const r = readBirthDate(cell, pipeline.dates.birthDate, (c, fs) => {
    const d = parseBirthDate(c, fs, today);
    // future / too_old: a real date (four-digit years only: a two-digit one never lands there); read it again for its value.
    return !d.ok && (d.code === 'future' || d.code === 'too_old') ? parseBirthDate(c, fs, '9999-12-31') : d;
  });
  return r.ok ? r.value.replaceAll('-', '') : undefined;
}

/** PID-7: the roster's date as YYYYMMDD when it reads as one, else the cell as written, for the v2 side to find as unreadable. */
export function birthDateField(cell: string, pipeline: Pipeline, today: string): string {
  return rosterBirthDate(cell, pipeline, today) ?? cell;
}

const blank = (parts: readonly Component[]) => parts.every((p) => p === '');

/** The person's fields in PID order (3, 5, 7, 8, 11, 13), as QPD-3…QPD-9 also take them. */
function personFields(row: RosterCells, pipeline: Pipeline, today: string): { ids: Field; name: Field; dob: string; sex: string; address: Field; phone: Field } {
  const f = (k: LogicalField) => row.fields[k] ?? '';
  const facility = facilityOf(pipeline);
  const ids: Value[] = [];
  if (f('recordId') !== '') ids.push([f('recordId'), '', '', facility, 'MR']);
  row.identifierCells.forEach((cell, i) => {
    if (cell === undefined || cell === '') return;
    const t = identifierType(pipeline, i);
    ids.push([cell, '', '', t.authority, t.type]);
  });
  const name = [f('family'), f('given'), f('middle'), f('suffix')];
  const address = [f('street'), f('street2'), f('city'), f('state'), f('zip')];
  return {
    ids: ids.length > 0 ? repeat(ids) : '',
    name: blank(name) ? '' : [...name, '', '', 'L'],
    dob: f('birthDate') === '' ? '' : birthDateField(f('birthDate'), pipeline, today),
    sex: f('sex'),
    address: blank(address) ? '' : [...address, '', 'H'],
    phone: f('phone') === '' ? '' : [f('phone'), 'PRN', 'PH'],
  };
}

export interface MessageOptions {
  /** MSH-10; unique within the batch. */
  controlId: string;
  /** For reading the roster's birth dates as normaliseRow would (two-digit years, future dates). */
  today: string;
  /** MSH-7. @defaultValue 20261101120000 */
  dateTime?: string;
}

const SENDING_APPLICATION = 'ROSTERMATCH-SAMPLES';

function msh(pipeline: Pipeline, type: readonly string[], profile: string, o: MessageOptions): string {
  return headerSegment('MSH', [SENDING_APPLICATION, facilityOf(pipeline), 'IIS', 'IIS', o.dateTime ?? '20261101120000', '', type, o.controlId, 'P', '2.5.1', '', '', 'ER', 'AL', '', '', '', '', [profile, 'CDCPHINVS']]);
}

/** One row as a VXU^V04 (Z22): MSH, PID, and a historical-record ORC/RXA as a Z22 carries. */
export function vxuMessage(row: RosterCells, pipeline: Pipeline, o: MessageOptions): string {
  const p = personFields(row, pipeline, o.today);
  return message([
    msh(pipeline, ['VXU', 'V04', 'VXU_V04'], 'Z22', o),
    segment('PID', ['1', '', p.ids, '', p.name, '', p.dob, p.sex, '', '', p.address, '', p.phone]),
    segment('ORC', ['RE', '', [o.controlId, SENDING_APPLICATION]]),
    segment('RXA', ['0', '1', '20261101', '', ['998', 'No vaccine administered', 'CVX'], '999', '', '', ['01', 'Historical information', 'NIP001'], '', '', '', '', '', '', '', '', '', '', 'NA']),
  ]);
}

/** One row as a QBP^Q11 (Z34): the same values in QPD-3…QPD-9, QPD-2 the control id + "-Q". */
export function qbpMessage(row: RosterCells, pipeline: Pipeline, o: MessageOptions): string {
  const p = personFields(row, pipeline, o.today);
  return message([
    msh(pipeline, ['QBP', 'Q11', 'QBP_Q11'], 'Z34', o),
    segment('QPD', [['Z34', 'Request Immunization History', 'CDCPHINVS'], `${o.controlId}-Q`, p.ids, p.name, '', p.dob, p.sex, p.address, p.phone]),
    segment('RCP', ['I', ['5', ['RD', 'Records', 'HL70126']]]),
  ]);
}

/** MSH-10 of the n-th message (from 0) of a batch: the type, then the row's position. */
export function controlIdOf(kind: 'VXU' | 'QBP', index: number): string {
  return `${kind}${index + 1}`;
}

/**
 * Writes the roster's rows as one FHS/BHS…BTS/FTS batch file of `kind` messages, one per row in
 * row order (message n is row n), in UTF-8 with CR after every segment. Streams: a 100k-row
 * roster never sits in memory. Returns the number of messages.
 */
export async function writeV2Batch(rosterFile: string, roster: Pipeline, out: string, o: { kind: 'VXU' | 'QBP'; today: string }): Promise<number> {
  const stream = createWriteStream(out, { encoding: 'utf8' });
  const write = async (text: string) => {
    if (!stream.write(`${text}\r`)) await once(stream, 'drain');
  };
  const facility = facilityOf(roster);
  const envelope = (id: 'FHS' | 'BHS') => headerSegment(id, [SENDING_APPLICATION, facility, 'IIS', 'IIS', '20261101120000', '', '', '', `${o.kind}-${id === 'FHS' ? 'F' : 'B'}1`]);
  let n = 0;
  try {
    await write(envelope('FHS'));
    await write(envelope('BHS'));
    for await (const row of rosterCells(rosterFile, roster)) {
      const opts = { controlId: controlIdOf(o.kind, row.index), today: o.today };
      await write(o.kind === 'VXU' ? vxuMessage(row, roster, opts) : qbpMessage(row, roster, opts));
      n++;
    }
    await write(segment('BTS', [String(n)]));
    await write(segment('FTS', ['1']));
  } catch (e) {
    stream.destroy();
    throw e;
  }
  stream.end();
  await once(stream, 'finish');
  return n;
}
