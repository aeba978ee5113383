import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_KINDS, generateSamples } from '../../src/samples/index.ts';
import type { GenerateReport } from '../../src/samples/index.ts';

const SEED = 20261101;
const PATIENTS = 2000;
const TODAY = '2026-11-01';

interface TruthRow {
  line: string;
  record_id: string;
  patient_id: string;
  errors: string;
  relation: string;
}

interface PatientJson {
  resourceType: string;
  id: string;
  birthDate: string;
  gender: string;
  name: { family: string; given: string[]; suffix?: string[] }[];
  identifier: { system: string; value: string }[];
  address?: { line: string[]; city: string; state: string; postalCode: string }[];
  multipleBirthInteger?: number;
}

const ROSTER_FILES = {
  school: { file: 'district7-fall.csv', truth: 'district7-fall.truth.csv' },
  payer: { file: 'acme-members-202611.txt', truth: 'acme-members-202611.truth.csv' },
  clinic: { file: 'riverside-panel.csv', truth: 'riverside-panel.truth.csv' },
} as const;

let root: string;
let dirA: string;
let report: GenerateReport;
let patients: Map<string, PatientJson>;

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name).slice(dir.length + 1));
  }
  return out.sort();
}

async function digests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const file of await listFiles(dir)) out[file] = createHash('sha256').update(await readFile(join(dir, file))).digest('hex');
  return out;
}

async function truth(name: keyof typeof ROSTER_FILES): Promise<TruthRow[]> {
  return parse(await readFile(join(dirA, 'truth', ROSTER_FILES[name].truth)), { columns: true }) as TruthRow[];
}

/** Roster data rows as arrays of cells (header excluded). */
async function rosterRows(name: keyof typeof ROSTER_FILES): Promise<{ header: string[]; rows: string[][] }> {
  const bytes = await readFile(join(dirA, 'rosters', ROSTER_FILES[name].file));
  if (name === 'payer') {
    const lines = iconv.decode(bytes, 'windows-1252').split('\r\n');
    expect(lines.pop()).toBe('');
    return { header: lines[0]!.split('|'), rows: lines.slice(1).map((l) => l.split('|')) };
  }
  const records = parse(bytes, { bom: true, relax_column_count: false }) as string[][];
  return { header: records[0]!, rows: records.slice(1) };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rostermatch-samples-'));
  dirA = join(root, 'a');
  report = await generateSamples({ patients: PATIENTS, seed: SEED, outDir: dirA, today: TODAY });
  patients = new Map();
  for (const line of (await readFile(join(dirA, 'iis', 'Patient.ndjson'), 'utf8')).split('\n')) {
    if (line) {
      const p = JSON.parse(line) as PatientJson;
      patients.set(p.id, p);
    }
  }
}, 60_000);

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('generateSamples', () => {
  it('writes the documented file layout and reports its sizes', async () => {
    expect(await listFiles(dirA)).toEqual([
      'iis/Immunization.ndjson',
      'iis/Patient.ndjson',
      'rosters/acme-members-202611.txt',
      'rosters/district7-fall.csv',
      'rosters/riverside-panel.csv',
      'truth/acme-members-202611.truth.csv',
      'truth/district7-fall.truth.csv',
      'truth/riverside-panel.truth.csv',
    ]);
    expect(report.patients).toBe(PATIENTS);
    expect(report.rosters.map((r) => [r.partner, r.file, r.rows])).toEqual([
      ['school-district-7', 'rosters/district7-fall.csv', 480],
      ['acme-health-plan', 'rosters/acme-members-202611.txt', 600],
      ['riverside-clinic', 'rosters/riverside-panel.csv', 320],
    ]);
  });

  it('writes byte-identical files for the same seed and different files for another seed', async () => {
    const again = join(root, 'again');
    const other = join(root, 'other');
    await generateSamples({ patients: PATIENTS, seed: SEED, outDir: again });
    await generateSamples({ patients: PATIENTS, seed: SEED + 1, outDir: other, today: TODAY });
    const a = await digests(dirA);
    expect(await digests(again)).toEqual(a);
    const b = await digests(other);
    for (const file of Object.keys(a)) expect(b[file], file).not.toBe(a[file]);
  }, 60_000);

  it('honours explicit roster sizes', async () => {
    const dir = join(root, 'sized');
    const r = await generateSamples({ patients: 300, seed: 9, outDir: dir, rosterRows: { school: 50, payer: 0, clinic: 75 } });
    expect(r.rosters.map((x) => x.rows)).toEqual([50, 0, 75]);
    const payer = iconv.decode(await readFile(join(dir, 'rosters', 'acme-members-202611.txt')), 'windows-1252');
    expect(payer.split('\r\n').filter(Boolean)).toHaveLength(1);
  }, 60_000);

  it('rejects nonsense options', async () => {
    await expect(generateSamples({ patients: 0, seed: 1, outDir: join(root, 'x') })).rejects.toThrow(RangeError);
    await expect(generateSamples({ patients: 10, seed: 1.5, outDir: join(root, 'x') })).rejects.toThrow(RangeError);
    await expect(generateSamples({ patients: 10, seed: 1, outDir: join(root, 'x'), today: '2026-02-30' })).rejects.toThrow();
  });
});

describe('IIS Patient.ndjson', () => {
  it('holds one valid FHIR Patient per line with unique ids', async () => {
    const lines = (await readFile(join(dirA, 'iis', 'Patient.ndjson'), 'utf8')).split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(PATIENTS);
    expect(patients.size).toBe(PATIENTS);
    const iisNumbers = new Set<string>();
    for (const p of patients.values()) {
      expect(p.resourceType).toBe('Patient');
      expect(p.id).toMatch(/^[0-9a-z]{10}$/);
      expect(['male', 'female']).toContain(p.gender);
      expect(p.birthDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(p.birthDate <= TODAY).toBe(true);
      expect(p.name[0]!.given.length).toBeGreaterThanOrEqual(1);
      const iis = p.identifier.find((i) => i.system === 'urn:oid:2.16.840.1.113883.3.9999.1');
      expect(iis?.value).toMatch(/^IIS\d{8}$/);
      iisNumbers.add(iis!.value);
    }
    expect(iisNumbers.size).toBe(PATIENTS);
  });

  it('has a realistic age spread with a bump at school ages', () => {
    const ages = [...patients.values()].map((p) => 2026 - Number(p.birthDate.slice(0, 4)));
    const share = (lo: number, hi: number): number => ages.filter((a) => a >= lo && a <= hi).length / ages.length;
    expect(share(0, 4)).toBeGreaterThan(0.03);
    expect(share(5, 18)).toBeGreaterThan(0.22);
    expect(share(65, 120)).toBeGreaterThan(0.05);
    expect(Math.max(...ages)).toBeGreaterThanOrEqual(85);
  });

  it('repeats common surnames and includes accented, punctuated and hyphenated names', () => {
    const families = [...patients.values()].map((p) => p.name[0]!.family);
    expect(families.filter((f) => f === 'Smith').length).toBeGreaterThan(PATIENTS * 0.003);
    const text = [...patients.values()].map((p) => [p.name[0]!.family, ...p.name[0]!.given].join(' ')).join('\n');
    expect(text).toMatch(/[áéíóúñÁÉÍÓÚÑ]/);
    expect(families.some((f) => f.includes("'"))).toBe(true);
    expect(families.some((f) => f.includes('-'))).toBe(true);
    expect(families.some((f) => f.includes(' '))).toBe(true);
  });

  it('contains twins and Jr/Sr namesakes', () => {
    const all = [...patients.values()];
    const twins = all.filter((p) => p.multipleBirthInteger !== undefined);
    expect(twins.length).toBeGreaterThan(PATIENTS * 0.01);
    // Every twin has a co-twin with the same surname, birth date and address but another given name.
    for (const t of twins.filter((p) => p.multipleBirthInteger === 1)) {
      const co = twins.find((o) => o.multipleBirthInteger === 2 && o.birthDate === t.birthDate && o.name[0]!.family === t.name[0]!.family && o.id !== t.id);
      if (!co) continue; // the co-twin may be one of the few people the IIS does not hold
      expect(co.name[0]!.given[0]).not.toBe(t.name[0]!.given[0]);
    }
    const juniors = all.filter((p) => p.name[0]!.suffix?.[0] === 'Jr');
    expect(juniors.length).toBeGreaterThan(5);
    const pairs = juniors.filter((jr) =>
      all.some((sr) => sr.id !== jr.id && sr.name[0]!.family === jr.name[0]!.family && sr.name[0]!.given[0] === jr.name[0]!.given[0] && Number(jr.birthDate.slice(0, 4)) - Number(sr.birthDate.slice(0, 4)) >= 18),
    );
    expect(pairs.length).toBeGreaterThan(5);
  });
});

describe('IIS Immunization.ndjson', () => {
  it('references existing patients, with doses between birth and today', async () => {
    const text = await readFile(join(dirA, 'iis', 'Immunization.ndjson'), 'utf8');
    const lines = text.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(report.immunizations);
    const ids = new Set<string>();
    const perPatient = new Map<string, number>();
    for (const line of lines) {
      const imm = JSON.parse(line) as {
        resourceType: string; id: string; status: string; occurrenceDateTime: string;
        patient: { reference: string }; vaccineCode: { coding: { system: string; code: string; display: string }[] };
      };
      expect(imm.resourceType).toBe('Immunization');
      expect(imm.status).toBe('completed');
      ids.add(imm.id);
      const pid = imm.patient.reference.replace(/^Patient\//, '');
      const p = patients.get(pid);
      expect(p, imm.patient.reference).toBeDefined();
      expect(imm.occurrenceDateTime >= p!.birthDate).toBe(true);
      expect(imm.occurrenceDateTime <= TODAY).toBe(true);
      expect(imm.vaccineCode.coding[0]!.system).toBe('http://hl7.org/fhir/sid/cvx');
      expect(imm.vaccineCode.coding[0]!.display.length).toBeGreaterThan(0);
      perPatient.set(pid, (perPatient.get(pid) ?? 0) + 1);
    }
    expect(ids.size).toBe(lines.length);
    expect(Math.max(...perPatient.values())).toBeLessThanOrEqual(20);
    // Roughly 3.4 kB per patient keeps 5,000 patients below 20 MB.
    expect(text.length / PATIENTS).toBeLessThan(3800);
  });
});

describe('rosters', () => {
  it('School District 7: UTF-8 with BOM, CRLF, exact headers, US dates', async () => {
    const bytes = await readFile(join(dirA, 'rosters', ROSTER_FILES.school.file));
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const text = bytes.toString('utf8');
    expect(text.split('\r\n').length).toBe(481 + 1);
    expect(text.replaceAll('\r\n', '')).not.toContain('\n');
    const { header, rows } = await rosterRows('school');
    expect(header).toEqual(['Student ID', 'Last Name', 'First Name', 'Middle Name', 'Suffix', 'Birth Date', 'Gender', 'Street Address', 'City', 'State', 'Zip', 'Guardian Phone', 'Grade']);
    expect(rows).toHaveLength(480);
    const dates = rows.map((r) => r[5]!).filter(Boolean);
    expect(dates.every((d) => /^\d{1,2}\/\d{1,2}\/\d{4}$/.test(d))).toBe(true);
    expect(dates.some((d) => /^\d\/|\/\d\//.test(d))).toBe(true); // occasional M/D/YYYY
    expect(rows.every((r) => ['M', 'F', ''].includes(r[6]!))).toBe(true);
    expect(rows.every((r) => /^(K|[1-9]|1[0-2])$/.test(r[12]!))).toBe(true);
    expect(text).toContain('"'); // RFC 4180 quoting for cells with commas
  });

  it('Acme Health Plan: Windows-1252, pipes, CRLF, upper case with accents kept', async () => {
    const bytes = await readFile(join(dirA, 'rosters', ROSTER_FILES.payer.file));
    // Accented letters are single 1252 bytes, so the file is not valid UTF-8.
    expect(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes)).toThrow();
    const { header, rows } = await rosterRows('payer');
    expect(header).toEqual(['MEMBER_ID', 'MBR_LAST_NM', 'MBR_FIRST_NM', 'MBR_MID_INIT', 'MBR_DOB', 'MBR_SEX_CD', 'ADDR_LINE_1', 'ADDR_LINE_2', 'CITY_NM', 'ST_CD', 'ZIP_CD']);
    expect(rows).toHaveLength(600);
    expect(rows.every((r) => r.length === 11)).toBe(true);
    expect(rows.every((r) => /^ACM\d{9}$/.test(r[0]!))).toBe(true);
    expect(rows.every((r) => ['M', 'F', 'U'].includes(r[5]!))).toBe(true);
    expect(rows.every((r) => r[4] === '' || /^\d{8}$/.test(r[4]!))).toBe(true);
    expect(rows.every((r) => r[1] === r[1]!.toUpperCase() && r[2] === r[2]!.toUpperCase())).toBe(true);
    expect(rows.some((r) => /[ÁÉÍÓÚÑ]/.test(r[1]! + r[2]!))).toBe(true);
  });

  it('Riverside clinic: UTF-8 without BOM, LF, ISO dates, MRNs the IIS holds', async () => {
    const bytes = await readFile(join(dirA, 'rosters', ROSTER_FILES.clinic.file));
    expect(bytes[0]).not.toBe(0xef);
    expect(bytes.includes('\r')).toBe(false);
    const { header, rows } = await rosterRows('clinic');
    expect(header).toEqual(['mrn', 'first_name', 'last_name', 'dob', 'sex', 'address', 'city', 'state', 'postal_code', 'phone']);
    expect(rows).toHaveLength(320);
    expect(rows.every((r) => r[3] === '' || /^\d{4}-\d{2}-\d{2}$/.test(r[3]!))).toBe(true);
    expect(rows.every((r) => ['male', 'female', ''].includes(r[4]!))).toBe(true);
    expect(rows.every((r) => r[9] === '' || /^\(\d{3}\) \d{3}-\d{4}$/.test(r[9]!))).toBe(true);
    // Most rows about IIS patients carry the MRN the IIS holds for that patient.
    const rowsTruth = await truth('clinic');
    let known = 0;
    let inIis = 0;
    for (const t of rowsTruth) {
      if (!t.patient_id) continue;
      inIis++;
      const mrns = patients.get(t.patient_id)!.identifier.filter((i) => i.system === 'urn:oid:2.16.840.1.113883.3.9999.7.1').map((i) => i.value);
      if (mrns.includes(t.record_id)) known++;
      else expect(t.errors).toMatch(/mrn_typo|mrn_not_in_iis|duplicate_person/);
    }
    expect(known / inIis).toBeGreaterThan(0.8);
  });

  it('never repeats a record id', async () => {
    for (const name of ['school', 'payer', 'clinic'] as const) {
      const { rows } = await rosterRows(name);
      expect(new Set(rows.map((r) => r[0])).size, name).toBe(rows.length);
    }
  });
});

describe('truth files', () => {
  it('describe every roster row, with patient ids that exist and known error kinds', async () => {
    for (const name of ['school', 'payer', 'clinic'] as const) {
      const rows = await truth(name);
      const { rows: roster } = await rosterRows(name);
      expect(rows).toHaveLength(roster.length);
      rows.forEach((t, i) => {
        expect(t.line).toBe(String(i + 2));
        expect(t.record_id).toBe(roster[i]![0]);
        if (t.patient_id) expect(patients.has(t.patient_id), t.patient_id).toBe(true);
        for (const kind of t.errors ? t.errors.split(';') : []) expect(ERROR_KINDS).toContain(kind);
        for (const rel of t.relation ? t.relation.split(';') : []) {
          const [kind, id] = rel.split(':');
          expect(['twin_of', 'jr_sr_of']).toContain(kind);
          expect(patients.has(id!)).toBe(true);
        }
      });
    }
  });

  it('keep the share of rows outside the IIS between 8 % and 15 %', async () => {
    for (const name of ['school', 'payer', 'clinic'] as const) {
      const rows = await truth(name);
      const inIis = rows.filter((t) => t.patient_id).length / rows.length;
      expect(inIis, name).toBeGreaterThanOrEqual(0.85);
      expect(inIis, name).toBeLessThanOrEqual(0.92);
      expect(report.rosters.find((r) => r.file.endsWith(ROSTER_FILES[name].file))!.inIndex).toBe(rows.filter((t) => t.patient_id).length);
    }
  });

  it('put both twins on the school roster and Jr/Sr pairs on the payer and clinic rosters', async () => {
    const bothListed = (rows: TruthRow[], kind: string): number => {
      const listed = new Set(rows.map((t) => t.patient_id).filter(Boolean));
      return rows.filter((t) => t.patient_id && t.relation.split(';').some((r) => r.startsWith(`${kind}:`) && listed.has(r.slice(kind.length + 1)))).length;
    };
    expect(bothListed(await truth('school'), 'twin_of')).toBeGreaterThanOrEqual(4);
    expect(bothListed(await truth('payer'), 'jr_sr_of') + bothListed(await truth('clinic'), 'jr_sr_of')).toBeGreaterThanOrEqual(4);
  });

  it('mark most rows clean, some with errors, and a few invalid of each kind', async () => {
    for (const name of ['school', 'payer', 'clinic'] as const) {
      const rows = await truth(name);
      const clean = rows.filter((t) => t.errors === '').length / rows.length;
      expect(clean, name).toBeGreaterThan(0.5);
      expect(clean, name).toBeLessThan(0.85);
      for (const kind of ['missing_dob', 'impossible_dob', 'future_dob', 'blank_family']) {
        expect(rows.some((t) => t.errors.split(';').includes(kind)), `${name} ${kind}`).toBe(true);
      }
    }
    const school = await truth('school');
    const { rows } = await rosterRows('school');
    school.forEach((t, i) => {
      const dob = rows[i]![5]!;
      if (t.errors.includes('missing_dob')) expect(dob).toBe('');
      if (t.errors.includes('impossible_dob')) {
        const [m, d, y] = dob.split('/').map(Number);
        expect(new Date(Date.UTC(y!, m! - 1, d!)).getUTCDate() === d! && m! <= 12).toBe(false);
      }
      if (t.errors.includes('blank_family')) expect(rows[i]![1]).toBe('');
    });
  });
});
