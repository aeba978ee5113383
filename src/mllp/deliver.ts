/**
 * A message taken over MLLP goes the way every dropped file goes: it is written, whole and
 * atomically, as a one-message file into its partner's inbound folder, and intake, the queue and
 * the run do the rest — so a message, once written, is never lost, whatever happens to the
 * connection or the process. Then its reply is read back from the run's `<name>.replies.hl7` in
 * the partner's outbound folder.
 *
 * The same partner's identical bytes are one run (intake's sha256 dedupe): a resent message is a
 * duplicate of the first, whose replies file — named after the first arrival — holds its reply.
 * The run is therefore found in the store, by this file's name or by partner and sha256, and its
 * replies file is read from where the run wrote it (written again from the record when missing,
 * as a duplicate drop restores a run's outputs).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../config/index.ts';
import type { ClaimOutcome } from '../intake/claim.ts';
import { partnerDirs } from '../intake/drop.ts';
import { repliesName } from '../results/replies.ts';
import { restoreOutputs } from '../run/index.ts';
import { getRun, RECORDED_STATES, type Db } from '../store/index.ts';

/** Where messages are written before their rename into inbound: a dot folder, which the watcher never lists. */
export const TEMP_FOLDER = '.mllp-tmp';

/**
 * How long a recorded run may lack its replies file before it is written again from the record:
 * the run is recorded a moment before its outputs are published.
 * @defaultValue 3000
 */
const RESTORE_AFTER_MS = 3000;

/** `mllp-<received, UTC>-<MSH-10, as a file name allows>-<random>.hl7`: unique, and says where it came from. */
export function messageFileName(controlId: string, at = new Date()): string {
  const id = controlId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64) || 'none';
  return `mllp-${at.toISOString().replace(/[-:.]/g, '')}-${id}-${randomBytes(4).toString('hex')}.hl7`;
}

/**
 * Writes the message's bytes as `name` in the partner's inbound folder: into the temporary folder
 * first (synced), then renamed, so inbound never holds part of a message. Where the drop root's
 * temporary folder is on another filesystem than inbound, the temporary name is in inbound itself
 * with a suffix the watcher waits on (`.part`).
 */
export async function writeToInbound(dropRoot: string, partner: string, name: string, bytes: Buffer): Promise<string> {
  const inbound = partnerDirs(dropRoot, partner).inbound;
  await fs.mkdir(inbound, { recursive: true });
  const final = path.join(inbound, name);
  const tmpDir = path.join(dropRoot, TEMP_FOLDER);
  await fs.mkdir(tmpDir, { recursive: true });
  const tmp = path.join(tmpDir, name);
  await writeSynced(tmp, bytes);
  try {
    await fs.rename(tmp, final);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await writeSynced(`${final}.part`, bytes);
    await fs.rename(`${final}.part`, final);
  }
  return final;
}

async function writeSynced(file: string, bytes: Buffer): Promise<void> {
  const h = await fs.open(file, 'wx');
  try {
    await h.writeFile(bytes);
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Temporary files a process that died mid-write left behind (older than an hour: never one being written). */
export async function clearStaleTemporaries(dropRoot: string, log: Logger): Promise<void> {
  const dir = path.join(dropRoot, TEMP_FOLDER);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return;
  }
  let removed = 0;
  for (const n of names) {
    const st = await fs.stat(path.join(dir, n)).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > 3600_000) {
      await fs.rm(path.join(dir, n), { force: true });
      removed++;
    }
  }
  if (removed > 0) log.info({ removed }, 'mllp: removed messages left half-written by an earlier process (never acknowledged)');
}

export type Delivered =
  | { kind: 'reply'; runId: string; reply: Buffer; duplicateOf?: string }
  /** Written, and its run not finished in time (or the wait was cut short): the reply will be in outbound. */
  | { kind: 'pending'; runId?: string }
  /** Written, and its run failed: resending it makes a new run. */
  | { kind: 'failed'; runId: string }
  /** Intake did not take the file (it was rejected, with a note to the partner, or refused). */
  | { kind: 'not-taken'; reason: string };

export interface AwaitOptions {
  db: Db;
  log: Logger;
  exportsDir: string;
  /** Hands the written file to intake at once (as the watcher would, a listing later). */
  claim?: (partner: string, file: string) => Promise<ClaimOutcome>;
  timeoutMs: number;
  pollMs: number;
  signal: AbortSignal;
}

/** The reply to the message written as `file`, from its run (or the run its bytes duplicate). */
export async function awaitReply(o: AwaitOptions, m: { partner: string; file: string; sha256: string }): Promise<Delivered> {
  const name = path.basename(m.file);
  let runId: string | undefined;
  let duplicateOf: string | undefined;
  if (o.claim) {
    try {
      const c = await o.claim(m.partner, m.file);
      if (c.kind === 'claimed') runId = c.runId;
      else if (c.kind === 'duplicate') runId = duplicateOf = c.of;
      else return { kind: 'not-taken', reason: c.reason };
    } catch (e) {
      // Taken by the watcher first (ENOENT), or the store is away: the file is in inbound, or in
      // the spool with its run; either way the run is found below or the watcher retries it.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') o.log.warn({ partner: m.partner, sha256: m.sha256, err: (e as Error).message }, 'mllp: intake of the message failed; the watcher retries it');
    }
  }
  const until = Date.now() + o.timeoutMs;
  let recordedAt: number | undefined;
  let restored = false;
  while (!o.signal.aborted) {
    try {
      runId ??= await findRun(o.db, m.partner, name, m.sha256);
      const run = runId ? await getRun(o.db, runId) : undefined;
      if (run?.state === 'failed') return { kind: 'failed', runId: run.id };
      if (run && RECORDED_STATES.includes(run.state) && run.resultPath) {
        const text = await fs.readFile(path.join(path.dirname(run.resultPath), repliesName(run.fileName))).catch(() => undefined);
        if (text) {
          const dup = duplicateOf ?? (run.fileName !== name ? run.id : undefined);
          return { kind: 'reply', runId: run.id, reply: unwrapBatch(text), ...(dup ? { duplicateOf: dup } : {}) };
        }
        recordedAt ??= Date.now();
        if (!restored && Date.now() - recordedAt >= RESTORE_AFTER_MS) {
          restored = true;
          await restoreOutputs(o.db, run, o.exportsDir);
        }
      }
    } catch (e) {
      o.log.warn({ partner: m.partner, sha256: m.sha256, err: (e as Error).message }, 'mllp: looking for the message\'s run failed; trying again');
    }
    const left = until - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(o.pollMs, left), undefined, { signal: o.signal }).catch(() => {});
  }
  return runId ? { kind: 'pending', runId } : { kind: 'pending' };
}

/**
 * This file's run: the one recorded under its name, else the one its bytes duplicate (the same
 * partner's, not failed, not forced: the run intake's dedupe names).
 */
async function findRun(db: Db, partner: string, name: string, sha256: string): Promise<string | undefined> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM run
      WHERE partner = $1 AND (file_name = $2 OR (file_sha256 = $3 AND state <> 'failed' AND NOT forced))
      ORDER BY (file_name = $2) DESC, received_at DESC LIMIT 1`,
    [partner, name, sha256],
  );
  return rows[0]?.id;
}

/** The messages of a replies file without its FHS/BHS…BTS/FTS envelope, segments ended by CR. */
export function unwrapBatch(file: Buffer): Buffer {
  const segments = file
    .toString('utf8')
    .split(/\r\n|\r|\n/)
    .filter((s) => s !== '' && !/^(FHS|BHS|BTS|FTS)(?![A-Za-z0-9])/.test(s));
  return Buffer.from(segments.map((s) => `${s}\r`).join(''), 'utf8');
}
