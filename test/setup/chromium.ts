/**
 * Vitest global setup of the `browser` project (test/console.e2e.test.ts): make sure the Chromium
 * that playwright-core drives is on this machine before the browser test starts, so `npm test`
 * passes on a fresh Debian machine with nothing installed by hand. playwright-core never downloads
 * a browser and Google's download hosts are not reachable from where this runs, so the browser is
 * Debian's `chromium` package, installed the way .ci/run installs its services. When it cannot be
 * provisioned the run fails here, naming why; the browser test is never skipped.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

/** Where Debian's `chromium` package puts the browser. */
export const DEBIAN_CHROMIUM = '/usr/bin/chromium';

const executable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

function run(command: string, args: string[]): void {
  const line = `${command} ${args.join(' ')}`;
  process.stderr.write(`[browser test setup] ${line}\n`);
  // apt's own chatter is kept for the failure message rather than filling the test report.
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (result.error) throw new Error(`cannot provision Chromium for the browser test: ${command} failed to start (${result.error.message})`);
  if (result.status !== 0) {
    const said = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(
      `cannot provision Chromium for the browser test: \`${line}\` exited with ${result.status ?? result.signal}; ` +
        `install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH. apt said:\n${said}`,
    );
  }
}

/** Installs Debian's Chromium when it is missing; throws, naming the reason, when it cannot. */
export function ensureChromium(): string {
  const wanted = process.env.CHROMIUM_PATH;
  if (wanted) {
    // An explicit browser is the caller's to provide; installing Debian's would not put it there.
    if (!executable(wanted)) throw new Error(`CHROMIUM_PATH is ${wanted}, which is not an executable file`);
    return wanted;
  }
  if (executable(DEBIAN_CHROMIUM)) return DEBIAN_CHROMIUM;
  if (!executable('/usr/bin/apt-get')) {
    throw new Error(`no Chromium at ${DEBIAN_CHROMIUM} and no apt-get to install it: install a Chromium and set CHROMIUM_PATH to it`);
  }
  if (process.getuid?.() !== 0) {
    throw new Error(`no Chromium at ${DEBIAN_CHROMIUM}, and installing Debian's chromium package needs root: run \`sudo apt-get install chromium\` once, or run the tests as root, or set CHROMIUM_PATH`);
  }
  process.stderr.write(`[browser test setup] no Chromium at ${DEBIAN_CHROMIUM}: installing Debian's chromium package (once per machine)\n`);
  // Another test run on this machine may be installing at the same moment: wait for dpkg's lock
  // instead of failing on it.
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  run('apt-get', [...lock, 'update', '-qq']);
  run('apt-get', [...lock, 'install', '-y', '-qq', 'chromium']);
  if (!executable(DEBIAN_CHROMIUM)) throw new Error(`installed Debian's chromium package, yet there is no ${DEBIAN_CHROMIUM}`);
  return DEBIAN_CHROMIUM;
}

export default function setup(): void {
  const browser = ensureChromium();
  // A browser that is present but cannot start (a half-installed package, a missing library)
  // should fail here, with its own words, rather than as a launch timeout inside the test.
  const version = spawnSync(browser, ['--version'], { encoding: 'utf8' });
  if (version.status !== 0) {
    throw new Error(`Chromium at ${browser} does not start: ${(version.stderr || version.stdout || String(version.error ?? version.signal)).trim()}`);
  }
  process.stderr.write(`[browser test setup] ${version.stdout.trim()} at ${browser}\n`);
}
