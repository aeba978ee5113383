/**
 * Watching `<drop-root>/<partner>/inbound/`. A periodic listing of every partner folder is the
 * source of truth — it finds files that were waiting at start-up and partner folders created
 * later, and it is what decides completeness. chokidar only makes the next listing come sooner.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../config/index.ts';
import { partnerFolderProblem } from '../intake/drop.ts';
import { CompletenessTracker } from './completeness.ts';

export { CompletenessTracker, isTemporaryName } from './completeness.ts';

export interface ReadyFile {
  partner: string;
  file: string;
  isSymlink: boolean;
  /** Hard links to the file when it was listed. */
  links: number;
}

/** A partner whose folders are not used, and why (a symbolic link, not a folder). */
export interface RefusedFolder {
  partner: string;
  problem: string;
}

/** How often a refusal that persists is logged again. */
const REFUSAL_REMINDER_MS = 10 * 60_000;

export interface WatchOptions {
  dropRoot: string;
  /**
   * Quiet period for files written in place. Well above the stalls of a slow SFTP link: a pause
   * longer than this takes a half-written file (which finalise then refuses and hands back).
   * @defaultValue 30000
   */
  quietMs?: number;
  /** Interval of the listing that is the source of truth. @defaultValue 2000 */
  scanIntervalMs?: number;
  log: Logger;
  /** Called once per complete file; the file must be moved out of inbound before it resolves. */
  onReady: (f: ReadyFile) => Promise<void>;
}

export class DropWatcher {
  readonly #opts: Required<Omit<WatchOptions, 'onReady' | 'log'>> & Pick<WatchOptions, 'onReady' | 'log'>;
  readonly #tracker: CompletenessTracker;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #scanning: Promise<void> | undefined;
  #again = false;
  #closed = false;
  /** When the last listing finished; the health check reads it. */
  lastScanAt = 0;
  readonly #refused = new Map<string, { problem: string; loggedAt: number }>();

  constructor(opts: WatchOptions) {
    this.#opts = { quietMs: 30_000, scanIntervalMs: 2000, ...opts };
    this.#tracker = new CompletenessTracker(this.#opts.quietMs);
  }

  async start(): Promise<void> {
    await fs.mkdir(this.#opts.dropRoot, { recursive: true });
    this.#watcher = watch(this.#opts.dropRoot, { ignoreInitial: true, depth: 2, followSymlinks: false });
    this.#watcher.on('all', () => this.poke());
    this.#watcher.on('error', (e) => this.#opts.log.warn({ err: (e as Error).message }, 'watcher error; periodic listing continues'));
    await this.scan();
    this.#timer = setInterval(() => this.poke(), this.#opts.scanIntervalMs);
  }

  /** Asks for a listing soon; listings never overlap. */
  poke(): void {
    if (this.#closed) return;
    if (this.#scanning) {
      this.#again = true;
      return;
    }
    this.#scanning = this.scan()
      .catch((e: unknown) => this.#opts.log.error({ err: (e as Error).message }, 'drop folder listing failed'))
      .finally(() => {
        this.#scanning = undefined;
        if (this.#again) {
          this.#again = false;
          this.poke();
        }
      });
  }

  /** Partners whose folders the last listing refused; for /healthz and status. */
  refusedFolders(): RefusedFolder[] {
    return [...this.#refused].map(([partner, r]) => ({ partner, problem: r.problem }));
  }

  /** One listing of every partner's inbound folder; hands complete files to onReady in turn. */
  async scan(): Promise<void> {
    const now = Date.now();
    const present = new Set<string>();
    const ready: ReadyFile[] = [];
    const refused = new Map<string, string>();
    for (const partner of await listPartners(this.#opts.dropRoot)) {
      let problem: string | null;
      try {
        problem = await partnerFolderProblem(this.#opts.dropRoot, partner);
      } catch {
        continue; // removed since the listing
      }
      if (problem) {
        refused.set(partner, problem);
        continue;
      }
      const inbound = path.join(this.#opts.dropRoot, partner, 'inbound');
      let entries;
      try {
        entries = await fs.readdir(inbound, { withFileTypes: true });
      } catch {
        continue; // a partner folder without inbound yet
      }
      for (const e of entries) {
        const file = path.join(inbound, e.name);
        if (e.isSymbolicLink()) {
          ready.push({ partner, file, isSymlink: true, links: 1 });
          continue;
        }
        if (!e.isFile()) continue;
        present.add(file);
        let st;
        try {
          st = await fs.lstat(file);
        } catch {
          continue; // renamed or claimed since the listing
        }
        if (this.#tracker.observe(file, st.size, st.mtimeMs, now)) ready.push({ partner, file, isSymlink: false, links: st.nlink });
      }
    }
    this.#tracker.retain(present);
    this.#noteRefusals(refused, now);
    for (const f of ready) {
      if (this.#closed) return;
      try {
        await this.#opts.onReady(f);
      } catch (e) {
        this.#opts.log.error({ partner: f.partner, err: (e as Error).message }, 'intake of a dropped file failed; it stays in inbound and is retried');
      }
      this.#tracker.forget(f.file);
    }
    this.lastScanAt = Date.now();
  }

  /** Logs a refused partner folder when first seen, when its problem changes, and every 10 minutes. */
  #noteRefusals(now: Map<string, string>, at: number): void {
    for (const [partner, problem] of now) {
      const was = this.#refused.get(partner);
      if (was && was.problem === problem && at - was.loggedAt < REFUSAL_REMINDER_MS) continue;
      this.#opts.log.warn({ partner, problem }, 'partner folder refused: links are not followed, so nothing in it is taken until it is a real folder');
      this.#refused.set(partner, { problem, loggedAt: at });
    }
    for (const partner of [...this.#refused.keys()]) {
      if (now.has(partner)) continue;
      this.#refused.delete(partner);
      this.#opts.log.info({ partner }, 'partner folder usable again');
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#watcher?.close();
    await this.#scanning;
  }
}

/** Every entry of the drop root that may be a partner's folder: real folders and links to check. */
async function listPartners(root: string): Promise<string[]> {
  try {
    return (await fs.readdir(root, { withFileTypes: true })).filter((d) => (d.isDirectory() || d.isSymbolicLink()) && !d.name.startsWith('.')).map((d) => d.name);
  } catch {
    return [];
  }
}
