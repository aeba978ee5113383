/**
 * The drop-folder layout and the file moves around it. A partner sees only its inbound and
 * outbound folders; originals that were taken are moved into the service's own area (spool while
 * in work, then archive, or quarantine when rejected or failed), out of the partner's reach.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export function partnerDirs(dropRoot: string, partner: string): { inbound: string; outbound: string } {
  return { inbound: path.join(dropRoot, partner, 'inbound'), outbound: path.join(dropRoot, partner, 'outbound') };
}

export function serviceDirs(dataDir: string): { spool: string; archive: string; quarantine: string } {
  return { spool: path.join(dataDir, 'spool'), archive: path.join(dataDir, 'archive'), quarantine: path.join(dataDir, 'quarantine') };
}

/**
 * Moves a file atomically (rename) into `dir`, under a unique name that keeps the original for
 * people. Across filesystems rename is impossible, so the file is copied, synced, then removed.
 */
export async function moveInto(file: string, dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const dest = path.join(dir, `${new Date().toISOString().replace(/[-:.]/g, '')}-${randomUUID().slice(0, 8)}-${originalName(path.basename(file))}`);
  try {
    await fs.rename(file, dest);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
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
  const note = path.join(outbound, `${fileName}.${kind}.txt`);
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
