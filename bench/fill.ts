/**
 * A store filled by SQL (generate_series) with FHIR Patients and Immunizations of the size the
 * sample generator writes, and one Group of some of them: what bench:export and the FHIR export's
 * memory test measure. Its tables are never analysed (autovacuum off), as a store may be after a
 * load. Members hold `memberImmunizations` between them, the other patients the rest.
 */
import type { Db } from '../src/store/index.ts';

/** The Group's id, and the partner that owns it (a SMART client of this partner may export it). */
export const GROUP = 'bench-export';
export const GROUP_PARTNER = 'bench';

export interface Sizes {
  patients: number;
  immunizations: number;
  members: number;
  memberImmunizations: number;
}

/** Patients per fill statement: a progress line each, and no statement of millions of rows. */
const FILL_BATCH = 50_000;

/** Fills a fresh store, batch by batch of patients: each with its Immunizations and, if a member, its place in the Group. */
export async function fillStore(db: Db, s: Sizes, progress?: (patients: number) => void): Promise<void> {
  for (const table of ['patient', 'immunization', 'group_member']) await db.exec(`ALTER TABLE ${table} SET (autovacuum_enabled = off)`);
  await db.exec(`INSERT INTO partner_group (id, partner, name, mode, member_count) VALUES ('${GROUP}', '${GROUP_PARTNER}', 'Bench Group', 'replace', ${s.members})`);
  for (let lo = 0; lo < s.patients; lo += FILL_BATCH) {
    await db.exec(fillBatch(s, lo, Math.min(s.patients, lo + FILL_BATCH) - 1));
    progress?.(Math.min(s.patients, lo + FILL_BATCH));
  }
}

/**
 * Patients `lo`..`hi` as SQL. Ids are a scrambling of the ordinal (unique, and not in the order
 * the rows lie in the table, as a load leaves them); each patient's Immunizations lie together.
 * The members are spread evenly over the ordinals, as are both kinds' Immunizations.
 */
function fillBatch(s: Sizes, lo: number, hi: number): string {
  const { patients: P, members: M, memberImmunizations: KM } = s;
  const KN = s.immunizations - KM;
  const id = (n: string) => `lpad(to_hex((${n} * 2654435761) % 1099511627776), 10, '0')`;
  // Item i's share when `total` is spread evenly over `over` items: the shares add up to `total` exactly.
  const even = (i: string, total: number, over: number) => (over === 0 ? '0' : `(((${i}) + 1) * ${total}) / ${over} - ((${i}) * ${total}) / ${over}`);
  const instant = (ts: string) => `to_char(${ts} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`;
  return `
    CREATE TEMP TABLE fill_batch AS
      SELECT n, ${id('n')} AS id, member, date '1990-01-01' + (n * 7 % 12000)::int AS birth,
             timestamptz '2022-01-01T00:00:00Z' + (n * 7919 % 126000000) * interval '1 second' AS lu,
             CASE WHEN member THEN ${even('(n * ' + M + ') / ' + P, KM, M)} ELSE ${even('n - ((n + 1) * ' + M + ') / ' + P, KN, P - M)} END AS doses
        FROM (SELECT n, ((n + 1) * ${M}) / ${P} > (n * ${M}) / ${P} AS member FROM generate_series(${lo}::bigint, ${hi}) n) g;
    INSERT INTO patient (id, given, middle, family, suffix, birth_date, sex, street, city, state, zip, phone, identifiers, resource, content_hash, last_updated)
      SELECT id, given, middle, family, '', birth::text, sex, street, 'Decatur', 'IL', zip, phone, '[]',
             jsonb_build_object('resourceType', 'Patient', 'id', id, 'meta', jsonb_build_object('lastUpdated', ${instant('lu')}),
               'identifier', jsonb_build_array(jsonb_build_object('system', 'urn:oid:2.16.840.1.113883.3.9999.1', 'value', 'IIS' || (10000000 + n * 89))),
               'name', jsonb_build_array(jsonb_build_object('use', 'official', 'family', family, 'given', jsonb_build_array(given, middle))),
               'gender', sex, 'birthDate', birth::text,
               'address', jsonb_build_array(jsonb_build_object('line', jsonb_build_array(street), 'city', 'Decatur', 'state', 'IL', 'postalCode', zip)),
               'telecom', jsonb_build_array(jsonb_build_object('system', 'phone', 'value', phone))),
             md5(id), lu
        FROM (SELECT *, (ARRAY['Ryan','Brittany','Vincent','Olivia','Noah','Emma','Liam','Sofia','Mateo','Ava'])[1 + n % 10] AS given,
                        (ARRAY['Michael','Grace','James','Rose','Lee','Marie','Alan','Jane'])[1 + n % 8] AS middle,
                        (ARRAY['Adams','Nguyen','Garcia','Smith','Johnson','Okafor','Kowalski','Martinez','Brown','Lee','Patel'])[1 + n % 11] AS family,
                        CASE WHEN n % 2 = 0 THEN 'female' ELSE 'male' END AS sex,
                        (100 + n % 9800) || ' ' || (ARRAY['8th Ave','Maple St','Oak Dr','Lincoln Blvd'])[1 + n % 4] AS street,
                        lpad((60000 + n % 3000)::text, 5, '0') AS zip, '217-' || lpad((n % 1000)::text, 3, '0') || '-' || lpad((n % 10000)::text, 4, '0') AS phone
                FROM fill_batch) p;
    INSERT INTO immunization (id, patient_id, resource, content_hash, last_updated)
      SELECT id || '-' || k, id,
             jsonb_build_object('resourceType', 'Immunization', 'id', id || '-' || k, 'meta', jsonb_build_object('lastUpdated', ${instant('lu')}), 'status', 'completed',
               'vaccineCode', jsonb_build_object('coding', jsonb_build_array(jsonb_build_object('system', 'http://hl7.org/fhir/sid/cvx',
                 'code', (ARRAY['08','20','10','03','21','115','62','114','141','133'])[1 + (n + k) % 10],
                 'display', (ARRAY['Hep B, adolescent or pediatric','DTaP','IPV','MMR','varicella','Tdap','HPV, quadrivalent','meningococcal MCV4P','Influenza, seasonal, injectable','Pneumococcal conjugate PCV 13'])[1 + (n + k) % 10]))),
               'patient', jsonb_build_object('reference', 'Patient/' || id), 'occurrenceDateTime', (birth + (k * 90)::int)::text, 'primarySource', true),
             md5(id || k), lu
        FROM fill_batch, generate_series(1, doses) k;
    INSERT INTO group_member (group_id, patient_id, added_at) SELECT '${GROUP}', id, timestamptz '2026-01-02T00:00:00Z' FROM fill_batch WHERE member;
    DROP TABLE fill_batch;`;
}
