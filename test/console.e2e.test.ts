/**
 * The console end to end, as an operator uses it: a real `rostermatch serve` process on the
 * embedded store and real Redis, a file dropped in a partner's folder, and Debian's Chromium
 * driven by playwright-core. Screenshots of every page land in test-results/console/.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { hashPassword } from '../src/console/index.ts';
import { loadIndexFile } from '../src/patient-index/index.ts';
import { openStore } from '../src/store/index.ts';
import { freePort, onCleanup, pipelinesDir, spawnCli, testPrefix } from './daemon-helpers.ts';
import { tempDir } from './helpers.ts';

/** Where Debian's `chromium` package puts the browser; the `browser` project's global setup (test/setup/chromium.ts) installs it when missing. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.resolve('test-results/console');
const PASSWORD = 'correct horse battery staple';

let browser: Browser;
beforeAll(async () => {
  await fs.access(CHROMIUM).catch(() => {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH`);
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // This machine's network is closed: without these Chromium keeps trying Google's services.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  await fs.mkdir(SHOTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
});

/** Long pages (a run's 800 rows, a Group's history) are shot as the operator first sees them: the top. */
const shot = (page: Page, name: string, fullPage = true) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });

/** serve on a fresh data folder holding the sample IIS index, with one operator. */
async function startServe(): Promise<{ url: string; inbound: string; data: string }> {
  const dir = await tempDir();
  const data = path.join(dir, 'data');
  const drop = path.join(dir, 'drop');
  const db = await openStore({ embeddedDir: path.join(data, 'db') });
  await loadIndexFile(db, 'samples/iis/Patient.ndjson');
  await db.close();
  await fs.writeFile(path.join(data, 'operators.yaml'), stringify({ operators: [{ name: 'alice', password: await hashPassword(PASSWORD) }] }));
  const inbound = path.join(drop, 'riverside-clinic', 'inbound');
  await fs.mkdir(inbound, { recursive: true });
  const port = await freePort();
  const serve = spawnCli(
    ['--data-dir', data, '--pipelines', await pipelinesDir(dir), 'serve', '--drop-root', drop, '--port', String(port), '--quiet-ms', '300', '--scan-ms', '200', '--chunk-rows', '100', '--concurrency', '1'],
    // Slow chunks, so the run is seen in progress: 8 chunks of 100 rows, 400 ms each.
    { ROSTERMATCH_QUEUE_PREFIX: testPrefix(), ROSTERMATCH_TEST_CHUNK_DELAY_MS: '400', DATABASE_URL: '' },
  );
  await serve.waitForOutput(/console at/, 60_000);
  onCleanup(async () => {
    serve.child.kill('SIGTERM');
    await serve.exited;
  });
  return { url: `http://127.0.0.1:${port}`, inbound, data };
}

describe('the operators\' console in Chromium', () => {
  it('signs in, watches a dropped file run, opens it, accepts a review item and sees the Group grow', { timeout: 180_000 }, async () => {
    const s = await startServe();
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    const page = await context.newPage();

    // Every page needs a sign-in; a wrong password is refused and audited.
    await page.goto(`${s.url}/runs`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await shot(page, '01-login');
    await page.fill('input[name=name]', 'alice');
    await page.fill('input[name=password]', 'not the password');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('.error')).toContain('do not match');
    await page.fill('input[name=name]', 'alice');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForURL(`${s.url}/runs`);
    expect(await page.textContent('#runs-body')).toContain('No runs yet');

    // The run appears on the open page by itself, shows its progress, and finishes.
    // The clinic's panel, and a patient of the IIS the panel lacks, sent without a family name:
    // missing evidence, so a person decides.
    const panel = await fs.readFile('samples/rosters/riverside-panel.csv', 'utf8');
    await fs.writeFile(path.join(s.inbound, 'riverside-panel.csv'), `${panel}99000001,Vincent,,2007-12-03,male,1962 8th Ave,Decatur,IL,62526,217-954-9174\n`);
    const row = page.locator('#runs-body tr', { hasText: 'riverside-panel.csv' });
    await row.waitFor({ timeout: 30_000 });
    await page.locator('#runs-body tr[data-state=matching] progress[max="9"]').waitFor({ timeout: 30_000 });
    await shot(page, '02-runs-in-progress');
    await page.locator('#runs-body tr[data-state=completed]').waitFor({ timeout: 60_000 });
    expect(await row.textContent()).toMatch(/matched 696.*possible 2.*no match 103/s);
    expect(await row.textContent()).not.toMatch(/invalid/);
    await shot(page, '03-runs-completed');

    // The run's page: timeline, counts, files, rows with their reasons.
    await row.locator('a').click();
    await page.waitForURL(/\/runs\/[0-9a-f-]{36}$/);
    const timeline = await page.locator('ol.timeline li').allTextContents();
    expect(timeline.map((t) => t.trim().split(/\s+/)[0])).toEqual(['received', 'parsing', 'matching', 'completed']);
    expect(await page.locator('table.counts').textContent()).toMatch(/possible\s*2/);
    const results = await page.request.get(await page.locator('a', { hasText: 'result file' }).getAttribute('href').then((h) => `${s.url}${h}`));
    expect(results.status()).toBe(200);
    expect((await results.text()).split('\n')[0]).toContain('outcome');
    await shot(page, '04-run', false);
    await page.click('nav.tabs a:has-text("possible")');
    expect(await page.locator('table.rows tbody tr').count()).toBe(2);
    expect(await page.locator('table.rows .reason').count()).toBeGreaterThan(4);
    await shot(page, '05-run-possible-rows');

    // The Group before the decision.
    await page.click('header.top nav a:has-text("Groups")');
    await page.click('a:has-text("riverside-clinic-panel")');
    const size = async () => Number(await page.textContent('#group-size'));
    expect(await size()).toBe(696);
    expect(await page.locator('pre.json').textContent()).toContain('"type": "Patient"');

    // Review: the roster row beside each candidate; one click accepts.
    await page.click('header.top nav a:has-text("Review")');
    const items = page.locator('.review-item');
    expect(await items.count()).toBe(2);
    const first = items.filter({ hasText: '4gav9c1tcb' });
    expect(await first.locator('table.compare tbody tr').count()).toBeGreaterThanOrEqual(12);
    expect((await first.locator('td.roster').nth(0).textContent())?.trim()).not.toBe('');
    await shot(page, '06-review');
    const accept = first.locator('button.accept').first();
    const patient = (await accept.textContent())!.replace('Accept ', '').trim();
    await accept.click();
    await expect.poll(() => page.textContent('.flash')).toContain(`accepted ${patient}`);
    expect(await page.locator('.review-item').count()).toBe(1);
    await shot(page, '07-review-after-accept');

    // The Group grew by that patient, and its history says who decided.
    await page.click('header.top nav a:has-text("Groups")');
    expect(await page.textContent('td[data-size="riverside-clinic-panel"]')).toBe('697');
    await page.click('a:has-text("riverside-clinic-panel")');
    expect(await size()).toBe(697);
    const latest = page.locator('table.history tbody tr').first();
    expect(await latest.textContent()).toMatch(new RegExp(`joined\\s*${patient}.*review decision by\\s*alice`, 's'));
    await shot(page, '08-group-after-accept', false);
    // Its export predates the decision until the operator exports again.
    expect(await page.textContent('form.stale')).toContain('changed after this export');
    await page.click('form.stale button');
    await expect.poll(() => page.textContent('.flash')).toContain('Exported 697 Patient');
    expect(await page.locator('form.stale').count()).toBe(0);

    // Bull Board, the audit trail and /metrics, all behind the same sign-in.
    await page.click('header.top nav a:has-text("Queues")');
    await page.getByText('rostermatch-match').first().waitFor({ timeout: 15_000 });
    await shot(page, '09-bull-board');
    await page.goto(`${s.url}/audit`);
    const audit = await page.locator('table.audit tbody').textContent();
    expect(audit).toContain('review.accept');
    expect(audit).toMatch(/view\s*review/);
    expect(audit).toContain('login.failed');
    expect(audit).toMatch(/export\s*group\/riverside-clinic-panel/);
    await shot(page, '10-audit');
    const metrics = await page.request.get(`${s.url}/metrics`);
    expect(await metrics.text()).toMatch(/rostermatch_runs\{[^}]*state="completed"[^}]*\} 1/);

    // Signing out ends the session: the same cookie no longer opens anything.
    await page.click('.who button');
    await page.waitForURL(/\/login/);
    expect((await page.request.get(`${s.url}/api/runs`)).status()).toBe(401);
    await context.close();
  });
});
