/**
 * The drop-folder layout and the file moves around it. A partner sees only its inbound and
 * outbound folders; originals that were taken are moved into the service's own area (spool while
 * in work, then archive, or quarantine when rejected or failed), out of the partner's reach.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export function partnerDirs(dropRoot: string, partner: string): { inbound: string; outbound: string } {
  return { inbound: path.join(dropRoot, partner, 'inbound'), outbound: path.join(dropRoot, partner, 'outbound') };
}

export function serviceDirs(dataDir: string): { spool: string; archive: string; quarantine: string } {
  return { spool: path.join(dataDir, 'spool'), archive: path.join(dataDir, 'archive'), quarantine: path.join(dataDir, 'quarantine') };
}

/**
 * Why a partner's folders cannot be used, or null. The partner folder, its inbound and its
 * outbound must be real folders: a symbolic link would let one partner's drops be read from, or
 * its results written into, a folder that is not its own (another partner's inbound, or anywhere
 * on the server). Links are never followed (lstat); the drop root itself is the operator's and
 * may be one.
 */
export async function partnerFolderProblem(dropRoot: string, partner: string): Promise<string | null> {
  const { inbound, outbound } = partnerDirs(dropRoot, partner);
  for (const [folder, what, required] of [
    [path.join(dropRoot, partner), 'the partner folder', true],
    [inbound, 'its inbound folder', false],
    [outbound, 'its outbound folder', false],
  ] as const) {
    let st;
    try {
      st = await fs.lstat(folder);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !required) continue;
      throw e;
    }
    if (st.isSymbolicLink()) return `${what} is a symbolic link`;
    if (!st.isDirectory()) return `${what} is not a folder`;
  }
  return null;
}

/**
 * The longest partner file name taken, in bytes. Names are kept with a 30-byte prefix in the
 * spool, archive and quarantine, and notes and result files add up to 18 bytes more; folders
 * hold names of at most 255 bytes.
 */
export const MAX_NAME_BYTES = 200;

/** Byte length of a name as the filesystem counts it. */
export const nameBytes = (name: string): number => Buffer.byteLength(name, 'utf8');

/**
 * `name` when it is at most `max` bytes; else its start, a hash of the whole and its extension,
 * in at most `max` bytes: a name too long to be kept still gets a quarantine entry and a note.
 */
export function shortName(name: string, max = MAX_NAME_BYTES): string {
  if (nameBytes(name) <= max) return name;
  const ext = path.extname(name);
  const tail = `~${createHash('sha256').update(name).digest('hex').slice(0, 8)}${nameBytes(ext) <= 16 ? ext : ''}`;
  let head = '';
  for (const ch of name) {
    if (nameBytes(head + ch) + nameBytes(tail) > max) break;
    head += ch;
  }
  return head + tail;
}

/**
 * Moves a file atomically (rename) into `dir`, under a unique name that keeps the original for
 * people. Across filesystems rename is impossible, so the file is copied, synced, then removed.
 * Only this name moves: a symbolic link stays a link (its target is never read), and a file
 * with other hard links keeps them where they are.
 */
export async function moveInto(file: string, dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const dest = path.join(dir, `${new Date().toISOString().replace(/[-:.]/g, '')}-${randomUUID().slice(0, 8)}-${shortName(originalName(path.basename(file)))}`);
  try {
    await fs.rename(file, dest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    if ((await fs.lstat(file)).isSymbolicLink()) {
      await fs.symlink(await fs.readlink(file), dest);
      await fs.unlink(file);
      return dest;
    }
    await fs.copyFile(file, `${dest}.partial`);
    const h = await fs.open(`${dest}.partial`, 'r+');
    await h.sync();
    await h.close();
    await fs.rename(`${dest}.partial`, dest);
    await fs.unlink(file);
  }
  return dest;
}

const MOVED_PREFIX = /^\d{8}T\d{9}Z-[0-9a-f]{8}-/;

/** The partner's own file name, without the prefix moveInto adds. */
export function originalName(movedName: string): string {
  return movedName.replace(MOVED_PREFIX, '');
}

export type NoteKind = 'rejected' | 'duplicate' | 'error' | 'held' | 'confirmed' | 'discarded';

/** A short note to the partner in its outbound folder: `<file>.<kind>.txt`. */
export async function writeNote(outbound: string, fileName: string, kind: NoteKind, lines: string[]): Promise<string> {
  await fs.mkdir(outbound, { recursive: true });
  // A name too long for the folder still gets its note, under a shortened name.
  const note = path.join(outbound, `${shortName(fileName)}.${kind}.txt`);
  await fs.writeFile(`${note}.tmp`, `${lines.join('\n')}\n`);
  await fs.rename(`${note}.tmp`, note);
  return note;
}

export async function fileExists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
