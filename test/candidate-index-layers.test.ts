/**
 * The in-memory candidate index follows changes as layers over the whole index (and compacts them
 * past a share of it): whatever the layering, it must answer exactly as an index built afresh from
 * the same patients — the same candidates for every key, the same name frequencies, the same size —
 * and a version a chunk already holds must keep answering as it did.
 */
import fs from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { blockingKeys, CandidateIndex } from '../src/match/index.ts';
import type { IndexChange } from '../src/match/candidate-index.ts';
import type { IndexPatient } from '../src/model/index.ts';
import { patientFromFhir, type FhirPatient } from '../src/patient-index/fhir.ts';

async function samplePatients(): Promise<IndexPatient[]> {
  const lines = (await fs.readFile('samples/iis/Patient.ndjson', 'utf8')).split('\n').filter(Boolean);
  return lines.map((l) => patientFromFhir(JSON.parse(l) as FhirPatient));
}

function built(patients: Iterable<IndexPatient>): CandidateIndex {
  const idx = new CandidateIndex();
  for (const p of patients) idx.add(p);
  return idx.seal();
}

/** Every key's candidates, each list sorted, as comparable text. */
function answers(idx: CandidateIndex, keys: readonly string[]): [string, string[]][] {
  return [...idx.byKeys(keys)].map(([k, ps]) => [k, ps.map((p) => JSON.stringify(p)).sort()] as [string, string[]]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

/** A deterministic pseudo-random sequence (the same changes on every run). */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 2 ** 32;
  };
}

describe('the in-memory index, followed by layers of changes', () => {
  it('answers as an index built afresh after every round (revisions, merges, removals, new patients), across a compaction, and old versions keep their answers', async () => {
    const patients = await samplePatients();
    const state = new Map(patients.map((p) => [p.id, p]));
    const rnd = random(14);
    const keys = new Set<string>();
    for (const p of patients) for (const k of blockingKeys(p.person, p.identifiers)) keys.add(k);

    let idx = built(patients);
    const held: { idx: CandidateIndex; expected: [string, string[]][]; keys: string[] }[] = [];
    let layers = 0;
    let compactions = 0;
    for (let round = 0; round < 30; round++) {
      const changes: IndexChange[] = [];
      const touched = new Set<string>();
      const ids = [...state.keys()];
      for (let i = 0; i < 200; i++) {
        const pick = rnd();
        const id = ids[Math.floor(rnd() * ids.length)]!;
        const p = state.get(id);
        if (!p) continue; // removed earlier in this round
        let change: IndexChange;
        if (pick < 0.5) change = { id, patient: { ...p, person: { ...p.person, given: `${p.person.given}${round % 3 === 0 ? 'E' : ''}`, street: `${round} MAIN ST` } } };
        else if (pick < 0.65) change = { id, patient: { ...p, survivor: ids[Math.floor(rnd() * ids.length)]! } };
        else if (pick < 0.75) change = { id };
        else change = { id: `new-${round}-${i}`, patient: { ...p, id: `new-${round}-${i}`, person: { ...p.person, family: `${p.person.family}SON` } } };
        changes.push(change);
        if (change.patient) state.set(change.id, change.patient);
        else state.delete(change.id);
        for (const k of change.patient ? blockingKeys(change.patient.person, change.patient.identifiers) : []) keys.add(k);
        for (const k of blockingKeys(p.person, p.identifiers)) touched.add(k);
        for (const k of change.patient ? blockingKeys(change.patient.person, change.patient.identifiers) : []) touched.add(k);
      }
      const before = idx;
      idx = idx.withChanges(changes);
      if (idx.layered) layers++;
      else compactions++;
      if (before.layered && !idx.layered) expect(idx).not.toBe(before);
      const fresh = built(state.values());
      // Every key the round touched, and a sample of the rest (all of them in the last round).
      const all = round === 29 ? [...keys] : [...touched, ...[...keys].filter(() => rnd() < 0.05)];
      const expected = answers(fresh, all);
      expect(answers(idx, all)).toEqual(expected);
      expect(idx.freq).toEqual(fresh.freq);
      expect(idx.size).toBe(fresh.size);
      if (round % 7 === 3) held.push({ idx, expected, keys: all });
    }
    // Both paths were taken: layers, and at least one compaction past the layer's limit.
    expect(layers).toBeGreaterThan(10);
    expect(compactions).toBeGreaterThan(0);
    // A version held while later ones were made answers as it did.
    for (const h of held) expect(answers(h.idx, h.keys)).toEqual(h.expected);
    // A layered index's snapshot parts make the same index.
    const layered = held.find((h) => h.idx.layered)!;
    expect(answers(CandidateIndex.fromParts(layered.idx.parts()), layered.keys)).toEqual(layered.expected);
  });
});
