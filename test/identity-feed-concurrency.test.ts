/**
 * Issue 14's acceptance: the identity feed runs concurrently with a 50k-row match run, and the
 * run's Group ends consistent with the final index. On PostgreSQL (the store serve runs beside a
 * feed on): a generated index and a 50k-row school roster, the run started, and once it is
 * matching a stream of feed transactions — merges of patients the roster matches into others,
 * removals of matched patients, revisions — applied through feedPatient/removeFeedPatient while
 * it runs (paced by its progress, the last ones as it records its Group). Then: no merged-away or
 * removed patient in the Group; every matched row's patient, taken for who it is now, is in it;
 * member_count equals the rows; each patient that left the Group has a `merged` or `removed`
 * event saying why.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { loadPartnerPipeline } from '../src/pipeline/index.ts';
import { runFile } from '../src/run/index.ts';
import { generateSamples } from '../src/samples/index.ts';
import { feedPatient, getGroup, groupHistory, groupMembers, removeFeedPatient, type FeedOutcome } from '../src/store/index.ts';
import { quietLog, tempDb } from './helpers.ts';

const ROWS = 50_000;
/** Enough that the roster's 44k in-index rows name some 30k patients (60k would give 15k, each in three rows). */
const PATIENTS = 120_000;
const GROUP = 'school-district-7-students';
const ACTOR = 'client/iis-mpi';

type Op =
  | { kind: 'merge'; id: string; survivor: string }
  | { kind: 'remove'; id: string }
  | { kind: 'revise'; id: string };

describe('the identity feed beside a 50k-row run (postgres)', () => {
  it('the run’s Group ends consistent with the final index', { timeout: 240_000 }, async () => {
    const t0 = performance.now();
    const { db, dir } = await tempDb('postgres');
    await generateSamples({ patients: PATIENTS, seed: 14, outDir: dir, rosterRows: { school: ROWS, payer: 1, clinic: 1 }, immunizations: false });
    const patients = new Map<string, Record<string, unknown>>();
    for (const line of (await fs.readFile(path.join(dir, 'iis', 'Patient.ndjson'), 'utf8')).split('\n')) {
      if (line) {
        const p = JSON.parse(line) as Record<string, unknown>;
        patients.set(p.id as string, p);
      }
    }
    await loadIndexFile(db, path.join(dir, 'iis', 'Patient.ndjson'));
    const tLoaded = performance.now();

    // Who the roster names (the generator's truth): the feed's targets are patients the run will match.
    const truth = (await fs.readFile(path.join(dir, 'truth', 'district7-fall.truth.csv'), 'utf8')).split('\n').slice(1).filter(Boolean).map((l) => l.split(',')[2]!);
    const inRoster = [...new Set(truth.filter((id) => id && patients.has(id)))];
    const rosterSet = new Set(inRoster);
    const notInRoster = [...patients.keys()].filter((id) => !rosterSet.has(id));
    expect(inRoster.length).toBeGreaterThan(25_000);
    // Disjoint choices: a subsumed patient, a removed one and a survivor are never the same, and no survivor is merged or removed.
    let r = 0;
    const take = (from: string[], n: number) => from.slice(r, (r += n));
    const mergedIn = take(inRoster, 300); // into a patient outside the roster
    const mergedPairs = take(inRoster, 200); // into another roster patient: the Group holds both, keeps one
    const removed = take(inRoster, 200);
    const revised = take(inRoster, 200);
    const ops: Op[] = [];
    mergedIn.forEach((id, i) => ops.push({ kind: 'merge', id, survivor: notInRoster[i]! }));
    for (let i = 0; i + 1 < mergedPairs.length; i += 2) ops.push({ kind: 'merge', id: mergedPairs[i]!, survivor: mergedPairs[i + 1]! });
    removed.forEach((id) => ops.push({ kind: 'remove', id }));
    revised.forEach((id) => ops.push({ kind: 'revise', id }));
    // Interleave the kinds (a fixed shuffle).
    for (let i = ops.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [ops[i], ops[j]] = [ops[j]!, ops[i]!];
    }

    const identifierOf = (id: string) => (patients.get(id)!.identifier as { system: string; value: string }[])[0]!;
    const apply = async (op: Op): Promise<FeedOutcome> => {
      const p = patients.get(op.id)!;
      const identifier = identifierOf(op.id);
      if (op.kind === 'remove') return removeFeedPatient(db, { identifier, actor: ACTOR, reason: 'record withdrawn by the IIS' });
      if (op.kind === 'merge') {
        return feedPatient(db, { identifier, actor: ACTOR, resource: { ...p, active: false, link: [{ other: { reference: `Patient/${op.survivor}` }, type: 'replaced-by' }] } });
      }
      return feedPatient(db, { identifier, actor: ACTOR, resource: { ...p, telecom: [{ system: 'phone', value: '217-555-0100' }] } });
    };

    // The feed: transactions are released in step with the run's progress (rows matched and stored),
    // all of them once the last chunk is through — as the run plans and records its Group.
    let released = 0;
    let done = 0;
    let doneDuringRun = 0;
    let runFinished = false;
    let wake: (() => void) | undefined;
    const outcomes: FeedOutcome[] = [];
    const feed = (async () => {
      while (done < ops.length) {
        if (done >= released) {
          await new Promise<void>((res) => (wake = res));
          continue;
        }
        outcomes.push(await apply(ops[done]!));
        done++;
        if (!runFinished) doneDuringRun++;
      }
    })();
    const release = (n: number) => {
      released = Math.max(released, Math.min(ops.length, n));
      wake?.();
    };

    const tRun = performance.now();
    let firstProgressRows = 0;
    const out = await runFile(db, quietLog, {
      file: path.join(dir, 'rosters', 'district7-fall.csv'),
      pipeline: await loadPartnerPipeline('pipelines', 'school-district-7'),
      outDir: path.join(dir, 'out'),
      exportsDir: path.join(dir, 'exports'),
      candidates: 'memory',
      actor: 'cli',
      onProgress: (p) => {
        if (firstProgressRows === 0) firstProgressRows = p.rows;
        // 90 % spread over matching; everything once the last row is through (planning, recording).
        release(p.rows >= ROWS ? ops.length : Math.ceil((0.9 * ops.length * p.rows) / ROWS));
      },
    });
    runFinished = true;
    const tRunDone = performance.now();
    release(ops.length);
    await feed;
    expect(out.kind).toBe('completed');
    if (out.kind !== 'completed') return;
    const tEnd = performance.now();
    const s = (a: number, b: number) => ((b - a) / 1000).toFixed(1);
    console.log(`generate+load ${s(t0, tLoaded)} s, run ${s(tRun, tRunDone)} s, feed tail after the run ${s(tRunDone, tEnd)} s; ${ops.length} feed transactions, ${doneDuringRun} while the run ran`);

    // The feed did run beside the run: it started once matching had, and most of it landed before the run ended.
    expect(firstProgressRows).toBeGreaterThan(0);
    expect(doneDuringRun).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o.kind === 'merged')).toHaveLength(400);
    expect(outcomes.filter((o) => o.kind === 'removed')).toHaveLength(200);
    expect(outcomes.filter((o) => o.kind === 'updated')).toHaveLength(200);

    // The final index: who each id stands for now.
    const survivorOf = new Map(ops.flatMap((o) => (o.kind === 'merge' ? [[o.id, o.survivor] as const] : [])));
    const gone = new Set(removed);
    const now = (id: string) => (gone.has(id) ? undefined : (survivorOf.get(id) ?? id));
    const { rows: stored } = await db.query<{ replaced_by: string | null; removed: boolean; id: string }>(
      'SELECT id, replaced_by, removed_at IS NOT NULL AS removed FROM patient WHERE id = ANY($1::text[])',
      [[...survivorOf.keys(), ...gone]],
    );
    for (const s of stored) {
      if (gone.has(s.id)) expect(s.removed).toBe(true);
      else expect(s.replaced_by).toBe(survivorOf.get(s.id));
    }

    const { rows: runRows } = await db.query<{ patient_id: string }>(`SELECT patient_id FROM run_row WHERE run_id = $1 AND outcome = 'matched'`, [out.run.id]);
    expect(runRows.length).toBeGreaterThan(ROWS * 0.6);
    const matched = new Set(runRows.map((x) => x.patient_id));
    const expected = new Set([...matched].flatMap((id) => (now(id) === undefined ? [] : [now(id)!])));
    const members = (await groupMembers(db, GROUP)).map((m) => m.patientId);
    const memberSet = new Set(members);
    // No merged-away or removed patient; every matched row's patient, as it is now; nobody else.
    for (const id of [...survivorOf.keys(), ...gone]) expect(memberSet.has(id), id).toBe(false);
    const missing = [...expected].filter((id) => !memberSet.has(id));
    const extra = members.filter((id) => !expected.has(id));
    expect({ missing: missing.length, extra: extra.length }).toEqual({ missing: 0, extra: 0 });
    // The targets were matched by the run (most of them): the test exercised what it says.
    const matchedMerged = [...survivorOf.keys()].filter((id) => matched.has(id));
    const matchedRemoved = removed.filter((id) => matched.has(id));
    expect(matchedMerged.length).toBeGreaterThan(300);
    expect(matchedRemoved.length).toBeGreaterThan(150);
    for (const id of matchedMerged) expect(memberSet.has(survivorOf.get(id)!), `survivor of ${id}`).toBe(true);
    const group = (await getGroup(db, GROUP))!;
    const { rows: counted } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM group_member WHERE group_id = $1', [GROUP]);
    expect(group.size).toBe(counted[0]!.n);
    expect(group.size).toBe(members.length);

    // History: whoever joined and is no longer a member left by a merge (naming the survivor) or a removal (with the reason).
    const history = await groupHistory(db, GROUP, 1_000_000);
    const last = new Map<string, (typeof history)[number]>();
    for (const e of history) if (!last.has(e.patientId)) last.set(e.patientId, e); // newest first
    let leftByMerge = 0;
    let leftByRemoval = 0;
    for (const [id, e] of last) {
      if (memberSet.has(id)) {
        expect(e.action, id).toBe('added');
        continue;
      }
      if (e.action === 'merged') {
        expect(e.otherPatientId).toBe(survivorOf.get(id));
        expect(e.actor).toBe(ACTOR);
        leftByMerge++;
      } else {
        expect(e.action, id).toBe('removed');
        expect(gone.has(id), id).toBe(true);
        expect(e.reason).toBe('record withdrawn by the IIS');
        leftByRemoval++;
      }
    }
    // A survivor that joined by a merge says so; one the run added directly (its rows resolved at planning) was added by the run.
    // (A survivor outside the roster added by the run means the run matched the subsumed patient and the merge came before it recorded.)
    let resolvedAtPlanning = 0;
    for (const id of matchedMerged) {
      const s = survivorOf.get(id)!;
      const e = last.get(s)!;
      expect(e.action).toBe('added');
      if (e.runId === null) expect([e.reason, e.otherPatientId, e.actor]).toEqual(['merged', id, ACTOR]);
      else {
        expect(e.runId).toBe(out.run.id);
        if (mergedIn.includes(id)) resolvedAtPlanning++;
      }
    }
    expect(resolvedAtPlanning).toBeGreaterThan(0);
    // Every history row of a subsumed or removed patient: they joined only by the run, left only by the feed.
    const events = history.filter((e) => survivorOf.has(e.patientId) || gone.has(e.patientId));
    for (const e of events) expect(e.action === 'added' ? e.runId : e.actor).toBe(e.action === 'added' ? out.run.id : ACTOR);

    console.log(
      `identity feed beside a ${ROWS}-row run: Group ${group.size} members; ` +
        `${matchedMerged.length} matched patients merged, ${matchedRemoved.length} removed; left the Group by merge ${leftByMerge}, by removal ${leftByRemoval}; merged before the run recorded (survivor added by the run) ${resolvedAtPlanning}`,
    );
  });
});
