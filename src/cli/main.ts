#!/usr/bin/env node
/**
 * The rostermatch command line. Each command is a thin edge over the stage functions: parse the
 * arguments, open the store, call, print. Errors print one line naming the cause and exit non-zero.
 * The long-running surfaces (serve's HTTP server, queues and console; status's queue reading) are
 * imported by the commands that use them: every other command starts without loading them.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { isRostermatchError } from '../errors/index.ts';
import { exportGroup, parseExportParams } from '../export/index.ts';
import { loadIndexFile } from '../patient-index/index.ts';
import { loadPartnerPipeline, loadPipelineFile } from '../pipeline/index.ts';
import { confirmHeldRun, describeHold, discardHeldRun, heldAgainMessage, levelsFor, runFile, trainModel } from '../run/index.ts';
import { weight, type Levels } from '../match/index.ts';
import { generateSamples } from '../samples/index.ts';
import {
  acceptReviewItem,
  defineGroup,
  findRun,
  getGroup,
  fhirGroupOf,
  groupHistory,
  listGroups,
  listReviewItems,
  moveGroup,
  rejectReviewItem,
  type ReviewState,
} from '../store/index.ts';
import { RostermatchError } from '../errors/index.ts';
import { createLogger, resolvePaths } from '../config/index.ts';
import { redisUrl } from '../queue/connection.ts';
import { withContext, type GlobalOptions } from './context.ts';
import { runDemo } from './demo.ts';
import { registerClientCommands } from './client.ts';
import { registerOperatorCommands } from './operator.ts';
import { printLoad, printLoadRejections, printRun } from './print.ts';
import { progressReporter } from './progress.ts';

const program = new Command()
  .name('rostermatch')
  .description('Match partners\' flat-file rosters to IIS patients, keep their FHIR Groups, export Bulk FHIR NDJSON.')
  .addOption(new Option('--data-dir <dir>', 'embedded database and outputs').env('ROSTERMATCH_DATA').default('.rostermatch'))
  .option('--pipelines <dir>', 'folder of partner pipeline files', 'pipelines')
  .showHelpAfterError('(run with --help for usage)');

const globals = (): GlobalOptions => program.opts<GlobalOptions>();

const nonNegativeInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
};

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
};

const positiveNumber = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
};

/** An http(s) origin, optionally with a path prefix (a proxy's), without query or fragment. */
const originUrl = (v: string) => {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new InvalidArgumentError('expected an absolute http or https URL');
  }
  if (!/^https?:$/.test(u.protocol) || u.search || u.hash || u.username) throw new InvalidArgumentError('expected an http or https URL without query, fragment or credentials');
  return u.href.replace(/\/+$/, '');
};

const index = program.command('index').description('the IIS patient index');
index
  .command('load')
  .description(
    'load FHIR Patient/Immunization NDJSON or the CSV form; upserts by id, reports bad lines. A nightly NDJSON delta may also carry ' +
      'merges (a Patient with a replaced-by link to its survivor, by reference or identifier), unmerges (that link dropped) and ' +
      'removals (a Patient with active false and meta.tag https://rostermatch/tags|removed): these move Group memberships as the ' +
      'identity feed does, after the rest of the file, in file order (actor index-load:<file name>)',
  )
  .argument('<files...>', 'NDJSON (.ndjson) or CSV (.csv) files, patients before their immunizations')
  .option('--json', 'print the load reports as JSON')
  .action(async (files: string[], o: { json?: boolean }) => {
    await withContext(globals(), async ({ db }) => {
      const reports = [];
      for (const f of files) {
        const r = await loadIndexFile(db, f);
        reports.push(r);
        if (!o.json) console.log(printLoad(r));
      }
      if (o.json) console.log(JSON.stringify(reports, null, 2));
      const rejected = printLoadRejections(reports);
      if (rejected) {
        console.error(rejected);
        process.exitCode = 1;
      }
    });
  });

program
  .command('match')
  .description('match one partner file: result file, Group change and export')
  .argument('<file>', 'the partner\'s roster, member list or panel')
  .requiredOption('--partner <id>', 'partner id (its pipeline is <pipelines>/<id>.yaml)')
  .option('--pipeline <file>', 'a pipeline file outside the pipelines folder')
  .option('--out <dir>', 'where the result files go (default: the partner\'s outbound folder)')
  .option('--force', 'process again even if these exact bytes were processed before')
  .option('--json', 'print the run summary as JSON')
  .option('--no-progress', 'no progress on stderr (a bar on a terminal, plain lines otherwise)')
  .action(async (file: string, o: { partner: string; pipeline?: string; out?: string; force?: boolean; json?: boolean; progress: boolean }) => {
    const g = globals();
    const pipeline = o.pipeline ? await loadPipelineFile(o.pipeline) : await loadPartnerPipeline(g.pipelines, o.partner);
    if (pipeline.partner !== o.partner) {
      throw new RostermatchError('PIPELINE_INVALID', `the pipeline is for partner "${pipeline.partner}", not "${o.partner}"`, { file: o.pipeline ?? '', field: 'partner' });
    }
    await withContext(g, async ({ db, log, paths }) => {
      // On stderr, so stdout stays the summary; stopped (without a final line) if the run fails.
      const progress = o.progress ? progressReporter() : undefined;
      const out = await runFile(db, log, {
        file,
        pipeline,
        outDir: o.out ?? path.join(paths.dropRoot, pipeline.partner, 'outbound'),
        exportsDir: paths.exportsDir,
        snapshotDir: paths.snapshotDir,
        force: !!o.force,
        ...(progress ? { onProgress: (p) => progress.update(p) } : {}),
      }).then(
        (r) => (progress?.done(), r),
        (e: unknown) => {
          progress?.stop();
          throw e;
        },
      );
      console.log(o.json ? JSON.stringify(out.kind !== 'duplicate' ? out.summary : { duplicateOf: out.run.id, run: out.run }, null, 2) : printRun(out));
    });
  });

program
  .command('status')
  .description('queue depths and workers (Redis), and the last runs (the database)')
  .option('--limit <n>', 'how many runs', positiveInt, 10)
  .option('--partner <id>', 'only this partner\'s runs')
  .option('--json', 'print the report as JSON')
  .action(async (o: { limit: number; partner?: string; json?: boolean }) => {
    const { gatherStatus, printStatus, statusFailed } = await import('./status.ts');
    const report = await gatherStatus({
      redisUrl: redisUrl(),
      databaseUrl: process.env.DATABASE_URL,
      embeddedDir: resolvePaths(globals().dataDir).dbDir,
      limit: o.limit,
      partner: o.partner,
    });
    console.log(o.json ? JSON.stringify(report, null, 2) : printStatus(report));
    // A store held by serve is the normal case beside it; Redis or a database that cannot be read is not.
    if (statusFailed(report)) process.exitCode = 1;
  });

const group = program.command('group').description('partner Groups');
group
  .command('show')
  .description('a Group as a FHIR resource (its owner in managingEntity), or its membership history')
  .argument('<group-id>')
  .option('--history', 'print the membership history instead (newest first)')
  .action(async (id: string, o: { history?: boolean }) => {
    await withContext(globals(), async ({ db }) => {
      const g = await getGroup(db, id);
      if (!g) throw new RostermatchError('GROUP_NOT_FOUND', `no Group with id "${id}"`);
      const out = o.history ? await groupHistory(db, id) : await fhirGroupOf(db, g);
      console.log(JSON.stringify(out, null, 2));
    });
  });
group
  .command('list')
  .description('every Group with its size')
  .action(async () => {
    await withContext(globals(), async ({ db }) => {
      for (const g of await listGroups(db)) console.log(`${g.id}\towner ${g.partner}\t${g.mode}\t${g.size} members\tv${g.version}\t${g.updatedAt}`);
    });
  });

program
  .command('export')
  .description('Bulk Data export of a Group: Patient.ndjson, Immunization.ndjson, manifest.json')
  .argument('<group-id>')
  .option('--out <dir>', 'export root (default: <data-dir>/exports)')
  .option('--since <instant>', 'only resources changed after this FHIR instant (Bulk _since)')
  .option('--type <types>', 'comma-separated resource types (Bulk _type): Patient,Immunization')
  .addOption(
    new Option('--public-url <url>', "the origin serve is reached by (as serve's --public-url): the manifest's request names <url>/fhir/Group/<id>/$export (default: the export folder, as a file: URL)")
      .env('ROSTERMATCH_PUBLIC_URL')
      .argParser(originUrl),
  )
  .action(async (id: string, o: { out?: string; since?: string; type?: string; publicUrl?: string }) => {
    const params = parseExportParams(o);
    await withContext(globals(), async ({ db, paths }) => {
      const r = await exportGroup(db, {
        groupId: id,
        outRoot: o.out ?? paths.exportsDir,
        types: params.types,
        ...(params.since ? { since: params.since } : {}),
        ...(o.publicUrl ? { fhirBase: `${o.publicUrl}${(await import('../service/index.ts')).FHIR_PATH}` } : {}),
      });
      console.log(`exported ${id} to ${r.dir} (transactionTime ${r.manifest.transactionTime}: the next --since)`);
      for (const x of r.manifest.output) console.log(`  ${x.type}: ${x.count}`);
      if (r.manifest.output.length === 0) console.log('  nothing to export');
    });
  });

program
  .command('samples')
  .description('synthetic test data')
  .command('generate')
  .description('a deterministic IIS population, three partner files and their ground truth')
  .requiredOption('--patients <n>', 'IIS population size', positiveInt)
  .option('--seed <n>', 'random seed; same seed, same bytes', positiveInt, 20261101)
  .option('--roster <n>', 'rows in each partner file (default: scaled to the population)', positiveInt)
  .requiredOption('--out <dir>', 'output folder')
  .action(async (o: { patients: number; seed: number; roster?: number; out: string }) => {
    const rosterRows = o.roster ? { school: o.roster, payer: o.roster, clinic: o.roster } : undefined;
    const r = await generateSamples({ patients: o.patients, seed: o.seed, outDir: o.out, ...(rosterRows ? { rosterRows } : {}) });
    console.log(`${r.patients} patients, ${r.immunizations} immunizations in ${o.out}/iis`);
    for (const x of r.rosters) console.log(`  ${x.partner}: ${x.file} ${x.rows} rows (${x.inIndex} in the index)`);
  });

const model = program.command('model').description('the Fellegi–Sunter model of a partner\'s pipeline');
const printLevels = (levels: Levels) => {
  for (const [field, ls] of Object.entries(levels)) {
    for (const [level, x] of Object.entries(ls as Record<string, { m: number; u: number }>)) {
      console.log(`${field.padEnd(11)} ${level.padEnd(16)} m ${x.m.toPrecision(3).padStart(9)}  u ${x.u.toPrecision(3).padStart(9)}  weight ${weight(x).toFixed(2).padStart(7)}`);
    }
  }
};
model
  .command('train')
  .description('estimate m (EM over the file\'s blocked pairs) and u (random index pairs) and store them for the partner')
  .argument('<file>', 'a file from this partner')
  .requiredOption('--partner <id>', 'partner id')
  .option('--pipeline <file>', 'a pipeline file outside the pipelines folder')
  .action(async (file: string, o: { partner: string; pipeline?: string }) => {
    const g = globals();
    const pipeline = o.pipeline ? await loadPipelineFile(o.pipeline) : await loadPartnerPipeline(g.pipelines, o.partner);
    await withContext(g, async ({ db }) => {
      const m = await trainModel(db, pipeline, file);
      console.log(`trained ${pipeline.partner}: ${m.blockedPairs} blocked pairs, ${m.randomPairs} random pairs, λ ${m.lambda.toFixed(4)}`);
      printLevels(await levelsFor(db, pipeline));
    });
  });
model
  .command('show')
  .description('the levels a partner\'s runs use: defaults, its trained model, its pipeline\'s overrides')
  .requiredOption('--partner <id>', 'partner id')
  .action(async (o: { partner: string }) => {
    const g = globals();
    const pipeline = await loadPartnerPipeline(g.pipelines, o.partner);
    await withContext(g, async ({ db }) => printLevels(await levelsFor(db, pipeline)));
  });

const review = program.command('review').description('possible and ambiguous rows waiting for a person');
const operator = () => process.env.ROSTERMATCH_OPERATOR ?? os.userInfo().username;
review
  .command('list')
  .description('review items, oldest first')
  .option('--partner <id>', 'only this partner')
  .addOption(new Option('--state <state>', 'which items').choices(['open', 'accepted', 'rejected', 'superseded', 'all']).default('open'))
  .option('--json', 'print as JSON')
  .action(async (o: { partner?: string; state: string; json?: boolean }) => {
    await withContext(globals(), async ({ db }) => {
      const items = await listReviewItems(db, { ...(o.partner ? { partner: o.partner } : {}), ...(o.state === 'all' ? {} : { state: o.state as ReviewState }) });
      if (o.json) return console.log(JSON.stringify(items, null, 2));
      for (const i of items) {
        const cands = i.scores.map((c) => `${c.patientId} (${c.score})`).join(', ');
        const decided = i.state === 'open' ? '' : ` — ${i.state}${i.patientId ? ` ${i.patientId}` : ''} by ${i.decidedBy} at ${i.decidedAt}`;
        console.log(`#${i.id}\t${i.partner}\trecord ${i.recordId} (line ${i.line} of run ${i.runId})\t${i.outcome}: ${cands}${decided}`);
      }
      if (items.length === 0) console.log('no review items');
    });
  });
review
  .command('accept')
  .description('this candidate is the person: they join the run\'s Group, and later files match the record to them')
  .argument('<item>', 'review item number', positiveInt)
  .argument('<patient-id>', 'one of the item\'s candidates')
  .option('--by <name>', 'who decides (default: $ROSTERMATCH_OPERATOR or the login name)')
  .action(async (item: number, patientId: string, o: { by?: string }) => {
    await withContext(globals(), async ({ db }) => {
      const r = await db.transaction((tx) => acceptReviewItem(tx, item, patientId, o.by ?? operator()));
      if (!r.ok) throw r.error ?? new RostermatchError('REVIEW_INVALID', r.reason);
      console.log(`#${item}: accepted ${patientId}; ${r.item.groupId ? `added to Group ${r.item.groupId}` : 'no Group'}`);
    });
  });
review
  .command('reject')
  .description('none of the candidates is the person; they are not offered for this record again')
  .argument('<item>', 'review item number', positiveInt)
  .option('--by <name>', 'who decides (default: $ROSTERMATCH_OPERATOR or the login name)')
  .action(async (item: number, o: { by?: string }) => {
    await withContext(globals(), async ({ db }) => {
      const r = await db.transaction((tx) => rejectReviewItem(tx, item, o.by ?? operator()));
      if (!r.ok) throw new RostermatchError('REVIEW_INVALID', r.reason);
      console.log(`#${item}: rejected`);
    });
  });

const codes = (what: string, pattern: RegExp) => (v: string) => {
  const list = v.split(',').map((x) => x.trim()).filter(Boolean);
  const bad = list.find((x) => !pattern.test(x));
  if (list.length === 0 || bad !== undefined) throw new InvalidArgumentError(`expected a comma-separated list of ${what}`);
  return list;
};

group
  .command('define')
  .description('a Group defined by characteristics (actual: false), evaluated against the index whenever it is exported: people living at these ZIP codes, optionally in an age range, optionally immunized with given vaccines; audited')
  .argument('<group-id>', 'a FHIR id: letters, digits, - and ., at most 64')
  .requiredOption('--partner <partner>', 'the partner the Group belongs to (only its clients can read or export it)')
  .requiredOption('--name <name>', 'a name partners will see')
  .requiredOption('--zip <zips>', 'comma-separated five-digit ZIP codes of the home address', codes('five-digit ZIP codes', /^\d{5}$/))
  .option('--under-age <years>', 'younger than this many whole years on the day of the export', positiveInt)
  .option('--min-age <years>', 'at least this many whole years old on the day of the export', nonNegativeInt)
  .option('--vaccine <cvx>', 'comma-separated CVX codes: immunized with at least one of them', codes('CVX codes', /^\d{1,3}$/))
  .option('--by <name>', 'who defines it (default: $ROSTERMATCH_OPERATOR or the login name)')
  .action(async (id: string, o: { partner: string; name: string; zip: string[]; underAge?: number; minAge?: number; vaccine?: string[]; by?: string }) => {
    if (!/^[A-Za-z0-9\-.]{1,64}$/.test(id)) throw new RostermatchError('USAGE', 'the Group id must be a FHIR id: letters, digits, - and ., at most 64', { field: 'group-id' });
    await withContext(globals(), async ({ db }) => {
      const characteristics = { zips: o.zip, ...(o.underAge !== undefined ? { underAge: o.underAge } : {}), ...(o.minAge !== undefined ? { minAge: o.minAge } : {}), ...(o.vaccine ? { vaccines: o.vaccine } : {}) };
      const g = await db.transaction((tx) => defineGroup(tx, { id, partner: o.partner, name: o.name, characteristics, by: o.by ?? operator() }));
      console.log(`Group ${g.id} (partner ${g.partner}) defined by characteristics, v${g.version}: evaluated at each export`);
    });
  });

group
  .command('move')
  .description('give a Group to another partner (a renamed partner, a Group set up under the wrong one); audited')
  .argument('<group-id>')
  .requiredOption('--to <partner>', 'the partner that will own it')
  .requiredOption('--reason <text>', 'why, for the audit log')
  .option('--by <name>', 'who moves it (default: $ROSTERMATCH_OPERATOR or the login name)')
  .action(async (id: string, o: { to: string; reason: string; by?: string }) => {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(o.to)) throw new RostermatchError('USAGE', `--to "${o.to}" is not a partner id (lower-case letters, digits and hyphens)`);
    if (!o.reason.trim()) throw new RostermatchError('USAGE', 'say why the Group is moved (--reason)');
    await withContext(globals(), async ({ db }) => {
      const m = await db.transaction((tx) => moveGroup(tx, { groupId: id, to: o.to, by: o.by ?? operator(), reason: o.reason, at: new Date().toISOString() }));
      console.log(`Group ${id}: owner ${m.from} → ${m.to}; recorded in the audit log`);
    });
  });

const runCmd = program.command('run').description('one run: its state, and an operator\'s answer to a held Group change');
runCmd
  .command('show')
  .description('a run\'s state, counts and, when held, the Group change waiting for a confirmation')
  .argument('<run-id>', 'the run id, or the first 8 characters status prints')
  .option('--json', 'print as JSON')
  .action(async (id: string, o: { json?: boolean }) => {
    await withContext(globals(), async ({ db }) => {
      const run = await findRun(db, id);
      if (!run) throw new RostermatchError('USAGE', `no run "${id}" (or several start with it)`);
      if (o.json) return console.log(JSON.stringify({ ...run, pipeline: undefined, sourcePath: undefined }, null, 2));
      console.log(`run ${run.id}: ${run.fileName} (${run.partner}) ${run.state}`);
      if (run.counts) console.log(`  outcomes: ${Object.entries(run.counts).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      if (run.hold) {
        const d = run.hold.decision;
        console.log(`  group ${run.hold.groupId}: ${d ? `was held (${describeHold(run.hold)}); ${d.action} by ${d.by} at ${d.at}${d.reason ? `: ${d.reason}` : ''}` : `HELD — ${describeHold(run.hold)}`}`);
      }
      if (run.error) console.log(`  error: ${run.error.message}`);
    });
  });
runCmd
  .command('confirm')
  .description('apply the Group change a held run showed (if the Group changed since, it is held again with new numbers)')
  .argument('<run-id>', 'the run id, or the first 8 characters status prints')
  .option('--by <name>', 'who confirms (default: $ROSTERMATCH_OPERATOR or the login name)')
  .action(async (id: string, o: { by?: string }) => {
    await withContext(globals(), async ({ db, paths }) => {
      const r = await confirmHeldRun(db, { runId: id, by: o.by ?? operator(), exportsDir: paths.exportsDir });
      if (r.kind === 'held-again') throw heldAgainMessage(r);
      const c = r.change;
      console.log(`run ${r.run.id}: confirmed; Group ${r.run.groupId}: ${c.before} → ${c.after} members (+${c.added} −${c.removed}); export ${r.published.export?.dir ?? 'none'}`);
    });
  });
runCmd
  .command('discard')
  .description('close a held run without changing its Group')
  .argument('<run-id>', 'the run id, or the first 8 characters status prints')
  .requiredOption('--reason <text>', 'why, for the audit log')
  .option('--by <name>', 'who discards (default: $ROSTERMATCH_OPERATOR or the login name)')
  .action(async (id: string, o: { by?: string; reason: string }) => {
    await withContext(globals(), async ({ db }) => {
      const run = await discardHeldRun(db, { runId: id, by: o.by ?? operator(), reason: o.reason });
      console.log(`run ${run.id}: discarded; Group ${run.groupId} unchanged`);
    });
  });


/** How often serve and worker look for their parent. */
const PARENT_CHECK_MS = 1000;

/**
 * Runs until SIGTERM or SIGINT (or its parent exits), then shuts down and exits 0. Each close step has its own deadline;
 * the exit is explicit because a Redis client that is still reconnecting (Redis unreachable)
 * would otherwise keep the process alive for ever, and a hard deadline backs that up.
 */
async function runUntilSignalled(close: () => Promise<string[]>, graceMs: number, outliveParent = false): Promise<never> {
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`rostermatch: ${signal}: shutting down\n`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // Started through a wrapper (npx, npm run, a shell script) that is then killed, the process
    // would be re-parented and keep serving, unseen, beside the next one started; a process
    // started by init (systemd, a container's PID 1) has no parent to lose.
    const parent = process.ppid;
    if (parent > 1 && !outliveParent) {
      setInterval(() => {
        if (process.ppid !== parent) stop(`parent process ${parent} exited`);
      }, PARENT_CHECK_MS).unref();
    }
  });
  setTimeout(() => {
    process.stderr.write('rostermatch: shutdown overran its deadline; exiting\n');
    process.exit(1);
  }, graceMs + 15_000).unref();
  const problems = await close();
  for (const p of problems) process.stderr.write(`rostermatch: shutdown: ${p}\n`);
  process.exit(0);
}

const testChunkDelay = () => Number(process.env.ROSTERMATCH_TEST_CHUNK_DELAY_MS ?? 0) || undefined;
const testFinaliseDelay = () => Number(process.env.ROSTERMATCH_TEST_FINALISE_DELAY_MS ?? 0) || undefined;

program
  .command('serve')
  .description('watch the drop folders and process every complete file on BullMQ workers (needs Redis)')
  .requiredOption('--drop-root <dir>', 'the folder holding <partner>/inbound and <partner>/outbound')
  .addOption(new Option('--port <n>', 'port of the console, its API, /metrics and /healthz').env('PORT').default(8080).argParser(nonNegativeInt))
  .option('--host <addr>', 'address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)', '127.0.0.1')
  .addOption(new Option('--operators <file>', 'who may sign in to the console (default: <data-dir>/operators.yaml)').env('ROSTERMATCH_OPERATORS'))
  .option('--secure-cookies', 'mark the session cookie Secure (when the console is reached over HTTPS)')
  .option('--concurrency <n>', 'match jobs at once in this process (0: leave matching to worker processes)', nonNegativeInt, 2)
  .option('--chunk-rows <n>', 'rows per match job', positiveInt, 1000)
  .option('--quiet-ms <n>', 'a file written in place is complete after its size and mtime stay still this long (files renamed on completion are taken at once)', nonNegativeInt, 30000)
  .option('--scan-ms <n>', 'interval of the drop-folder listing', positiveInt, 2000)
  .option('--reconcile-ms <n>', 'interval of the check of unfinished runs against the queues', positiveInt, 30000)
  .option('--lock-ms <n>', 'job lock; a dead worker\'s jobs are taken over after it', positiveInt, 30000)
  .option('--stalled-ms <n>', 'how often stalled jobs are looked for', positiveInt, 30000)
  .option('--grace-ms <n>', 'on SIGTERM, how long running jobs may take to finish before they are handed back', nonNegativeInt, 20000)
  .addOption(new Option('--public-url <url>', 'the origin partners\' Bulk Data clients reach this service by (https behind a proxy); the FHIR base is <url>/fhir (default: the address it listens on)').env('ROSTERMATCH_PUBLIC_URL').argParser(originUrl))
  .option('--export-keep-hours <n>', 'how long a finished Bulk Data export\'s files stay downloadable', positiveNumber, 24)
  .option('--outlive-parent', 'keep running when the process that started this one exits (nohup, setsid); by default it shuts down')
  .option('--mllp-port <n>', 'also take HL7 v2 VXU/QBP messages over MLLP on this port, into the same queue as files, answered on the connection (0: a free port; default: no listener)', nonNegativeInt)
  .option('--mllp-host <addr>', 'address the MLLP listener listens on (default: --host)')
  .option('--mllp-tls-cert <file>', 'MLLP over TLS: the certificate chain (PEM); needs --mllp-tls-key (default: plain TCP)')
  .option('--mllp-tls-key <file>', 'MLLP over TLS: the private key (PEM)')
  .option('--mllp-timeout-ms <n>', 'how long an MLLP message waits for its run\'s reply before the answer is ACK AE 207 "accepted, reply not ready" (the reply then lands in outbound)', positiveInt, 60000)
  .option('--mllp-max-bytes <n>', 'the longest MLLP message taken; a longer one closes the connection', positiveInt, 1024 * 1024)
  .action(async (o: { dropRoot: string; port: number; publicUrl?: string; exportKeepHours: number; host: string; operators?: string; secureCookies?: boolean; concurrency: number; chunkRows: number; quietMs: number; scanMs: number; reconcileMs: number; lockMs: number; stalledMs: number; graceMs: number; outliveParent?: boolean; mllpPort?: number; mllpHost?: string; mllpTlsCert?: string; mllpTlsKey?: string; mllpTimeoutMs: number; mllpMaxBytes: number }) => {
    const g = globals();
    if (!o.mllpTlsCert !== !o.mllpTlsKey) throw new RostermatchError('USAGE', '--mllp-tls-cert and --mllp-tls-key go together');
    if (o.mllpTlsCert && o.mllpPort === undefined) throw new RostermatchError('USAGE', '--mllp-tls-cert needs --mllp-port');
    const paths = resolvePaths(g.dataDir);
    const log = createLogger(process.env.LOG_LEVEL ?? 'info');
    const delay = testChunkDelay();
    const { startServe } = await import('../service/index.ts');
    const service = await startServe({
      dropRoot: path.resolve(o.dropRoot),
      dataDir: paths.dataDir,
      pipelinesDir: path.resolve(g.pipelines),
      redisUrl: redisUrl(),
      databaseUrl: process.env.DATABASE_URL,
      host: o.host,
      port: o.port,
      ...(o.operators ? { operatorsFile: path.resolve(o.operators) } : {}),
      ...(o.secureCookies ? { secureCookies: true } : {}),
      concurrency: o.concurrency,
      chunkRows: o.chunkRows,
      quietMs: o.quietMs,
      scanIntervalMs: o.scanMs,
      reconcileIntervalMs: o.reconcileMs,
      lockDurationMs: o.lockMs,
      stalledIntervalMs: o.stalledMs,
      shutdownGraceMs: o.graceMs,
      ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}),
      exportKeepMs: o.exportKeepHours * 3600_000,
      log,
      ...(delay ? { chunkDelayMs: delay } : {}),
      ...(testFinaliseDelay() ? { finaliseDelayMs: testFinaliseDelay()! } : {}),
      ...(o.mllpPort !== undefined
        ? {
            mllp: {
              port: o.mllpPort,
              ...(o.mllpHost ? { host: o.mllpHost } : {}),
              ...(o.mllpTlsCert && o.mllpTlsKey ? { tls: { cert: readFileSync(o.mllpTlsCert), key: readFileSync(o.mllpTlsKey) } } : {}),
              replyTimeoutMs: o.mllpTimeoutMs,
              maxMessageBytes: o.mllpMaxBytes,
            },
          }
        : {}),
    });
    console.log(`serving ${path.resolve(o.dropRoot)}; console at ${service.url}/ (health at ${service.url}/healthz); FHIR base ${service.fhirBase}`);
    if (service.mllp) console.log(`MLLP${service.mllp.tls ? ' over TLS' : ''} on ${service.mllp.host}:${service.mllp.port}`);
    await runUntilSignalled(service.close, o.graceMs, o.outliveParent);
  });

program
  .command('worker')
  .description('more matching workers on this machine, sharing serve\'s Redis and PostgreSQL (needs REDIS_URL and DATABASE_URL)')
  .option('--concurrency <n>', 'match jobs at once', positiveInt, 2)
  .option('--lock-ms <n>', 'job lock; a dead worker\'s jobs are taken over after it', positiveInt, 30000)
  .option('--stalled-ms <n>', 'how often stalled jobs are looked for', positiveInt, 30000)
  .option('--grace-ms <n>', 'on SIGTERM, how long running jobs may take to finish before they are handed back', nonNegativeInt, 20000)
  .option('--outlive-parent', 'keep running when the process that started this one exits (nohup, setsid); by default it shuts down')
  .action(async (o: { concurrency: number; lockMs: number; stalledMs: number; graceMs: number; outliveParent?: boolean }) => {
    const databaseUrl = process.env.DATABASE_URL;
    if (!databaseUrl) throw new RostermatchError('USAGE', 'worker needs DATABASE_URL: the embedded store belongs to the serve process alone');
    const delay = testChunkDelay();
    const { startRemoteWorker, workerId } = await import('../service/index.ts');
    const w = await startRemoteWorker({
      redisUrl: redisUrl(),
      databaseUrl,
      concurrency: o.concurrency,
      lockDurationMs: o.lockMs,
      stalledIntervalMs: o.stalledMs,
      shutdownGraceMs: o.graceMs,
      log: createLogger(process.env.LOG_LEVEL ?? 'info'),
      snapshotDir: resolvePaths(globals().dataDir).snapshotDir,
      ...(delay ? { chunkDelayMs: delay } : {}),
    });
    console.log(`worker ${workerId()} taking match jobs`);
    await runUntilSignalled(w.close, o.graceMs, o.outliveParent);
  });

registerOperatorCommands(program, globals);
registerClientCommands(program, globals);

program
  .command('demo')
  .description('load the sample IIS index, match the three sample partner files, print where everything went')
  .option('--samples <dir>', 'the sample set', 'samples')
  .action(async (o: { samples: string }) => {
    await withContext(globals(), (ctx) => runDemo(ctx, o.samples));
  });

try {
  await program.parseAsync();
} catch (e) {
  if (isRostermatchError(e)) {
    console.error(`rostermatch: ${e.message}`);
    process.exitCode = 1;
  } else {
    console.error(`rostermatch: internal error: ${(e as Error)?.stack ?? String(e)}`);
    process.exitCode = 70;
  }
  // A command that failed half-way (serve, say, after its workers started) may still hold
  // connections and timers; the command is over, so the process must not linger.
  process.exit();
}
