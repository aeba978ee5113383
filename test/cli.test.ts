import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fhirImmunization, fhirPatient, runCli as cli, tempDir, writeNdjson, writeText } from './helpers.ts';

const MAIN = path.resolve('src/cli/main.ts');


/** The CLI with `input` on its stdin (not a terminal), as a script would run it. */
function cliWithInput(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('the command line', () => {
  it('has --help on every command', async () => {
    const cmds = [[], ['index', 'load'], ['match'], ['group', 'show'], ['group', 'list'], ['export'], ['samples', 'generate'], ['demo'], ['serve'], ['worker'], ['review', 'list'], ['review', 'accept'], ['review', 'reject'], ['model', 'train'], ['model', 'show'], ['status'], ['operator', 'add'], ['operator', 'remove'], ['operator', 'list'], ['operator', 'token']];
    // One process per command, as before, but four at a time: each spends most of its life loading modules.
    const results: Awaited<ReturnType<typeof cli>>[] = [];
    for (let i = 0; i < cmds.length; i += 4) results.push(...(await Promise.all(cmds.slice(i, i + 4).map((cmd) => cli([...cmd, '--help'])))));
    for (const [i, cmd] of cmds.entries()) {
      const r = results[i]!;
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/^Usage: rostermatch/);
    }
  });

  it('exits non-zero with a one-line reason on error', async () => {
    const dir = await tempDir();
    const r = await cli(['match', 'nothing.csv', '--partner', 'no-such-partner', '--data-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^rostermatch: PIPELINE_NOT_FOUND: cannot read the pipeline file \(pipelines\/no-such-partner\.yaml\)/);
    const usage = await cli(['match', 'x.csv']);
    expect(usage.code).not.toBe(0);
    expect(usage.stderr).toMatch(/required option '--partner <id>' not specified/);
  });

  it('loads an index, matches a file, shows the Group and exports it', async () => {
    const dir = await tempDir();
    const env = { ROSTERMATCH_DATA: path.join(dir, 'data') };
    const p = await writeNdjson(path.join(dir, 'Patient.ndjson'), [fhirPatient({ id: 'p1', given: 'Ava', family: 'Martinez', birthDate: '2015-03-14', mrn: 'MRN-7' })]);
    const i = await writeNdjson(path.join(dir, 'Immunization.ndjson'), [fhirImmunization('i1', 'p1')]);
    const load = await cli(['index', 'load', p, i], env);
    expect(load.code).toBe(0);
    expect(load.stdout).toMatch(/patients 1 new/);
    const roster = await writeText(path.join(dir, 'panel.csv'), 'mrn,first_name,last_name,dob\nMRN-7,Ava,Martinez,2015-03-14\n');
    const match = await cli(['match', roster, '--partner', 'riverside-clinic', '--out', path.join(dir, 'out')], env);
    expect(match.code, match.stderr).toBe(0);
    expect(match.stdout).toMatch(/outcomes: matched 1, ambiguous 0, possible 0, no_match 0, invalid 0/);
    expect(match.stdout).toMatch(/group riverside-clinic-panel \(replace\): 0 → 1 members/);
    expect(await fs.readFile(path.join(dir, 'out', 'panel.results.csv'), 'utf8')).toMatch(/^line,record_id,outcome,patient_id,score,reasons,candidates\r\n2,MRN-7,matched,p1,/);
    const again = await cli(['match', roster, '--partner', 'riverside-clinic', '--out', path.join(dir, 'out')], env);
    expect(again.stdout).toMatch(/^duplicate of run /);
    const group = JSON.parse((await cli(['group', 'show', 'riverside-clinic-panel'], env)).stdout);
    expect(group).toMatchObject({ resourceType: 'Group', type: 'person', actual: true, quantity: 1, member: [{ entity: { reference: 'Patient/p1' } }] });
    const exp = await cli(['export', 'riverside-clinic-panel', '--out', path.join(dir, 'ex'), '--type', 'Immunization'], env);
    expect(exp.stdout).toMatch(/Immunization: 1/);
    expect((await cli(['review', 'list'], env)).stdout).toMatch(/^no review items/);
    const noItem = await cli(['review', 'accept', '999', 'p1', '--by', 'alice'], env);
    expect(noItem.code).toBe(1);
    expect(noItem.stderr).toMatch(/^rostermatch: REVIEW_INVALID: no review item 999/);
    const bad = await cli(['export', 'riverside-clinic-panel', '--since', 'yesterday'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/EXPORT_INVALID_REQUEST: _since must be a FHIR instant/);
  });

  it('manages console operators and tokens in the operators file, keeping only hashes', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'operators.yaml');
    const short = await cliWithInput(['operator', 'add', 'alice', '--password-stdin', '--file', file], 'short\n');
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/at least 12 characters/);
    expect((await cliWithInput(['operator', 'add', 'alice', '--password-stdin', '--file', file], 'a long enough password\n')).stdout).toMatch(/added operator alice/);
    const token = await cliWithInput(['operator', 'token', 'prometheus', '--file', file], '');
    expect(token.stdout.trim()).toMatch(/^rmt_[A-Za-z0-9_-]{32}$/);
    const text = await fs.readFile(file, 'utf8');
    expect(text).not.toContain('a long enough password');
    expect(text).not.toContain(token.stdout.trim());
    expect(text).toMatch(/password: scrypt\$/);
    expect(((await fs.stat(file)).mode & 0o777).toString(8)).toBe('600');
    expect((await cli(['operator', 'list', '--file', file])).stdout).toBe('operator\talice\ntoken\tprometheus\n');
    expect((await cli(['operator', 'remove', 'prometheus', '--file', file])).code).toBe(0);
    expect((await cli(['operator', 'list', '--file', file])).stdout).toBe('operator\talice\n');
    const bad = await cli(['operator', 'add', 'not a name', '--file', file]);
    expect(bad.stderr).toMatch(/USAGE: operator name: letters, digits/);

    await writeText(file, 'operators:\n  - name: bob\n    password: hunter2\n');
    const invalid = await cli(['operator', 'list', '--file', file]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toBe(`rostermatch: OPERATORS_INVALID: not a password hash written by \`rostermatch operator add\` (${file}, field "operators.0.password")\n`);
  });
});
