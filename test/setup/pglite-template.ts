/**
 * Vitest global setup of the `node` project: one migrated, cleanly closed embedded store per test
 * run, which test/helpers.ts copies wherever a test wants a fresh one. A store created from
 * nothing runs PGlite's initdb (WASM) and every migration, 15 seconds or so on a loaded 2-core
 * machine; copying this one and opening the copy takes about a second. The copy is given an
 * identity of its own (store_identity) before a test sees it, so copies are distinct stores.
 *
 * When the template cannot be made, the run goes on and every store is created from nothing.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { openEmbedded } from '../../src/store/index.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The template store's folder; '' when there is none (helpers then create stores from nothing). */
    pgliteTemplate: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'rostermatch-template-'));
  const dir = path.join(root, 'db');
  try {
    const started = Date.now();
    const db = await openEmbedded(dir);
    await db.close();
    project.provide('pgliteTemplate', dir);
    process.stderr.write(`[node test setup] embedded store template ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  } catch (e) {
    process.stderr.write(`[node test setup] no embedded store template (${(e as Error).message}); tests create their stores from nothing\n`);
    project.provide('pgliteTemplate', '');
  }
  return () => fs.rm(root, { recursive: true, force: true });
}
