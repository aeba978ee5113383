import { defineConfig } from 'vitest/config';

/** The console's end-to-end test drives a real Chromium; only its project provisions one. */
const BROWSER_TESTS = ['test/console.e2e.test.ts'];

export default defineConfig({
  test: {
    // PGlite boots a WASM Postgres per test file; two cores run two files at a time comfortably.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      // One migrated embedded store per run (test/setup/pglite-template.ts): tests copy it rather than
      // create each store from nothing (initdb and every migration, some 15 s apiece).
      { extends: true, test: { name: 'node', include: ['test/**/*.test.ts'], exclude: BROWSER_TESTS, globalSetup: ['test/setup/pglite-template.ts'] } },
      {
        extends: true,
        // Vitest runs a project's global setup only when one of its files is in the run, so
        // `vitest run test/parse.test.ts` never touches apt, and `npm test` installs Debian's
        // Chromium first when the machine has none (an apt install takes a minute or two).
        test: { name: 'browser', include: BROWSER_TESTS, globalSetup: ['test/setup/chromium.ts'] },
      },
    ],
  },
});
