/**
 * Taking a complete file from a partner's inbound folder: check that it is one this partner may
 * drop, claim it by an atomic move into the spool, fingerprint it, and record the run before any
 * work starts. The same bytes from the same partner are one run: a second drop gets a note naming
 * the first run and is archived.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../config/index.ts';
import { isRostermatchError } from '../errors/index.ts';
import { loadPartnerPipeline, type Pipeline } from '../pipeline/index.ts';
import { createRun, type Db } from '../store/index.ts';
import { fileExists, MAX_NAME_BYTES, moveInto, nameBytes, originalName, partnerDirs, partnerFolderProblem, serviceDirs, writeNote } from './drop.ts';
import { sha256File } from './index.ts';

export interface IntakeDirs {
  dropRoot: string;
  dataDir: string;
  pipelinesDir: string;
}

export type ClaimOutcome =
  | { kind: 'claimed'; runId: string; partner: string; sha256: string }
  | { kind: 'duplicate'; of: string }
  | { kind: 'rejected'; reason: string }
  /** The partner's folders are links or not folders: nothing was moved and no note written. */
  | { kind: 'refused'; reason: string };

/** What is known of a dropped file besides its name. */
export interface DroppedFile {
  isSymlink: boolean;
  /** Hard links to the file (names it has on this filesystem). @defaultValue 1 */
  links?: number;
}

/** Why a file in an inbound folder is not for processing, or null when it is. */
export function rejectionReason(fileName: string, f: DroppedFile, pipeline: Pipeline | undefined): string | null {
  if (f.isSymlink) return 'symbolic links are not processed; upload the file itself';
  if (fileName.startsWith('.')) return 'hidden files are not processed';
  const bytes = nameBytes(fileName);
  if (bytes > MAX_NAME_BYTES) return `the file name is ${bytes} bytes long; names of up to ${MAX_NAME_BYTES} bytes are processed, so rename it and upload it again`;
  // Another name of the same file may be in another partner's inbound or anywhere on the server:
  // its bytes are not this partner's to send.
  if ((f.links ?? 1) > 1) return 'the file has other names on the server (hard links); upload the file itself';
  if (!pipeline) return 'no pipeline is configured for this partner';
  if (!path.matchesGlob(fileName, pipeline.file.namePattern)) return `the file name does not match the agreed pattern "${pipeline.file.namePattern}"`;
  return null;
}

/**
 * @param links hard links the listing saw, so that of two names of one file in two inbound
 * folders, both are refused whichever is claimed first (refusing the first may leave the second
 * with one link, when the quarantine is on another filesystem).
 */
export async function claimFile(db: Db, log: Logger, dirs: IntakeDirs, partner: string, file: string, isSymlink: boolean, links = 1): Promise<ClaimOutcome> {
  const name = path.basename(file);
  // Checked again at the moment of the move: the listing may be seconds old.
  const folderProblem = await partnerFolderProblem(dirs.dropRoot, partner);
  if (folderProblem) {
    log.warn({ partner, problem: folderProblem }, 'partner folder refused: links are not followed; nothing taken');
    return { kind: 'refused', reason: folderProblem };
  }
  const st = await fs.lstat(file);
  const outbound = partnerDirs(dirs.dropRoot, partner).outbound;
  const service = serviceDirs(dirs.dataDir);
  let pipeline: Pipeline | undefined;
  let pipelineProblem = '';
  try {
    pipeline = await loadPartnerPipeline(dirs.pipelinesDir, partner);
  } catch (e) {
    pipelineProblem = isRostermatchError(e) ? e.code : 'PIPELINE_INVALID';
  }
  const reason = rejectionReason(name, { isSymlink: isSymlink || st.isSymbolicLink(), links: Math.max(links, st.nlink) }, pipeline);
  if (reason) {
    // A rename moves only this name: other hard links keep the file where they are, unchanged,
    // and still count it, so every other name of it is refused too while this one is kept.
    await moveInto(file, path.join(service.quarantine, partner));
    await writeNote(outbound, name, 'rejected', [`${name}: not processed: ${reason}.`, ...(pipelineProblem ? [`(${pipelineProblem})`] : [])]);
    log.warn({ partner, reason: pipelineProblem || reason }, 'file rejected');
    return { kind: 'rejected', reason };
  }
  // While the database is away every listing would claim the file and put it back: the partner
  // would see it vanish from inbound and return. Ask first; the move-back below covers an outage
  // that begins between the question and the insert.
  await db.query('SELECT 1');
  const claimed = await moveInto(file, path.join(service.spool, partner));
  try {
    return await recordClaim(db, log, dirs, partner, claimed, name, pipeline!);
  } catch (e) {
    // Not recorded (the database is away): the file goes back, so the next listing tries again. A
    // file of that name uploaded meanwhile is not overwritten; this one then waits in the spool
    // for serve's next start.
    if (!(await fileExists(file))) await fs.rename(claimed, file).catch(() => {});
    throw e;
  }
}

/** Records a claimed (spooled) file as a run, or as a duplicate of an earlier one. */
export async function recordClaim(db: Db, log: Logger, dirs: IntakeDirs, partner: string, spooled: string, name: string, pipeline: Pipeline): Promise<ClaimOutcome> {
  const sha256 = await sha256File(spooled);
  const runId = randomUUID();
  const created = await createRun(db, {
    id: runId,
    partner,
    fileName: name,
    fileSha256: sha256,
    receivedAt: new Date().toISOString(),
    state: 'received',
    pipeline,
    sourcePath: spooled,
  });
  if (!created.created) {
    const of = created.existing.id;
    await moveInto(spooled, path.join(serviceDirs(dirs.dataDir).archive, partner));
    await writeNote(partnerDirs(dirs.dropRoot, partner).outbound, name, 'duplicate', [
      `${name}: duplicate of run ${of}: the same file was received at ${created.existing.receivedAt}.`,
      created.existing.resultPath ? `Its results: ${path.basename(created.existing.resultPath)}` : `That run is ${created.existing.state}.`,
    ]);
    log.info({ partner, sha256, runId: of }, 'duplicate file');
    return { kind: 'duplicate', of };
  }
  log.info({ partner, sha256, runId }, 'file claimed');
  return { kind: 'claimed', runId, partner, sha256 };
}

/**
 * Files claimed into the spool whose run was never recorded (the process died between the move
 * and the insert) are recorded now, so nothing dropped is ever lost.
 */
export async function recoverSpool(db: Db, log: Logger, dirs: IntakeDirs): Promise<ClaimOutcome[]> {
  const spool = serviceDirs(dirs.dataDir).spool;
  const out: ClaimOutcome[] = [];
  let partners: string[];
  try {
    partners = await fs.readdir(spool);
  } catch {
    return out;
  }
  const { rows } = await db.query<{ source_path: string }>('SELECT source_path FROM run WHERE source_path IS NOT NULL');
  const known = new Set(rows.map((r) => r.source_path));
  for (const partner of partners) {
    for (const entry of await fs.readdir(path.join(spool, partner))) {
      const spooled = path.join(spool, partner, entry);
      if (known.has(spooled)) continue;
      const name = originalName(entry);
      const pipeline = await loadPartnerPipeline(dirs.pipelinesDir, partner);
      out.push(await recordClaim(db, log, dirs, partner, spooled, name, pipeline));
    }
  }
  return out;
}
