/** Patients' FHIR resources with their Immunizations, for replies that carry a person's record (an HL7 v2 RSP). */
import type { Queryable } from './db.ts';

export interface PatientRecord {
  resource: Record<string, unknown>;
  /** Oldest first. */
  immunizations: Record<string, unknown>[];
}

/** Each patient's resource and, with `immunizations`, theirs; patients merged away, removed or unknown are absent. */
export async function patientRecords(db: Queryable, ids: readonly string[], o: { immunizations: boolean }): Promise<Map<string, PatientRecord>> {
  const out = new Map<string, PatientRecord>();
  if (ids.length === 0) return out;
  const { rows } = await db.query<{ id: string; resource: Record<string, unknown> }>('SELECT id, resource FROM patient WHERE id = ANY($1::text[]) AND replaced_by IS NULL AND removed_at IS NULL', [ids]);
  for (const r of rows) out.set(r.id, { resource: r.resource, immunizations: [] });
  if (!o.immunizations || out.size === 0) return out;
  const { rows: shots } = await db.query<{ patient_id: string; resource: Record<string, unknown> }>(
    `SELECT patient_id, resource FROM immunization WHERE patient_id = ANY($1::text[]) ORDER BY patient_id, resource->>'occurrenceDateTime', id`,
    [[...out.keys()]],
  );
  for (const s of shots) out.get(s.patient_id)?.immunizations.push(s.resource);
  return out;
}
