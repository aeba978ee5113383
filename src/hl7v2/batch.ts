/**
 * A file of HL7 v2 messages split into its messages, with its envelope checked: bare messages
 * one after another, BHS…BTS, or FHS BHS…BTS FTS. The envelope never costs a message: a count
 * that disagrees or a missing trailer is a problem noted with its line, and every MSH found is
 * handed on for the message reader to judge.
 */
import { component, field, parseSegment, readDelimiters, splitLines, stripBom, V2SyntaxError } from './parse.ts';
import { transcode } from './encode.ts';
import { DEFAULT_DELIMITERS, type Delimiters, type V2Batch } from './types.ts';

const ENVELOPE_IDS = new Set(['MSH', 'BHS', 'BTS', 'FHS', 'FTS']);

/** The envelope segment a line starts, if any: its id followed by a separator (or nothing), not `MSHX…`. */
function envelopeId(line: string): string | undefined {
  const id = line.slice(0, 3);
  return ENVELOPE_IDS.has(id) && (line.length === 3 || !/[A-Za-z0-9]/.test(line[3]!)) ? id : undefined;
}

/** A BHS field as written, in the standard delimiters the reply batch is written with. */
const echo = (d: Delimiters, raw: string) => transcode(raw, d, DEFAULT_DELIMITERS, 'field');

export function readBatch(text: string): V2Batch {
  const batch: V2Batch = { envelope: 'bare', messages: [], problems: [] };
  const problem = (line: number, message: string) => batch.problems.push({ line, message });
  let seen: 'bare' | 'batch' | 'file' | undefined;
  // BTS and FTS carry no MSH-2 of their own: they are split with what the last BHS/FHS declared.
  let d = DEFAULT_DELIMITERS;
  let message: { lines: string[]; line: number } | undefined;
  let openBatch: { line: number; messages: number } | undefined;
  let openFile: { line: number; batches: number } | undefined;

  const flush = () => {
    if (message) batch.messages.push({ text: message.lines.map((l) => `${l}\r`).join(''), line: message.line });
    message = undefined;
  };
  const closeBatch = () => {
    if (openBatch) problem(openBatch.line, `the batch that begins at line ${openBatch.line} has no BTS`);
    openBatch = undefined;
  };
  const count = (line: string, what: 'BTS' | 'FTS', found: number, at: number) => {
    const written = field(parseSegment(line, d), 1).split(d.component)[0]!;
    if (written === '') return; // BTS-1 and FTS-1 are optional: nothing to check
    const holds = what === 'BTS' ? `the batch holds ${found} message(s)` : `the file holds ${found} batch(es)`;
    if (!/^\d+$/.test(written)) problem(at, `${what}-1 is not a number; ${holds}`);
    else if (Number(written) !== found) problem(at, `${what}-1 says ${written}, ${holds}`);
  };
  const header = (line: string, id: string, at: number) => {
    try {
      d = readDelimiters(line, id);
    } catch (e) {
      if (!(e instanceof V2SyntaxError)) throw e;
      problem(at, e.message);
    }
  };

  splitLines(stripBom(text)).forEach((line, i) => {
    const at = i + 1;
    if (line.trim() === '') return;
    const id = envelopeId(line);
    if (id === undefined) {
      if (message) message.lines.push(line);
      else problem(at, `line ${at} is not part of any message`);
      return;
    }
    flush();
    switch (id) {
      case 'MSH':
        seen ??= 'bare';
        if (openBatch) openBatch.messages += 1;
        else if (seen !== 'bare') problem(at, `the message at line ${at} is outside any batch`);
        message = { lines: [line], line: at };
        break;
      case 'FHS':
        if (seen) problem(at, `FHS at line ${at} is not at the start of the file`);
        seen ??= 'file';
        closeBatch();
        header(line, id, at);
        openFile = { line: at, batches: 0 };
        break;
      case 'BHS': {
        if (seen === 'bare') problem(at, `BHS at line ${at} follows messages outside any batch`);
        seen ??= 'batch';
        closeBatch();
        header(line, id, at);
        if (openFile) openFile.batches += 1;
        const bhs = parseSegment(line, d);
        batch.batchHeader ??= {
          sendingApplication: echo(d, field(bhs, 3)),
          sendingFacility: echo(d, field(bhs, 4)),
          receivingApplication: echo(d, field(bhs, 5)),
          receivingFacility: echo(d, field(bhs, 6)),
          controlId: component(d, field(bhs, 11), 1),
        };
        openBatch = { line: at, messages: 0 };
        break;
      }
      case 'BTS':
        if (!openBatch) problem(at, `BTS at line ${at} closes no batch`);
        else count(line, 'BTS', openBatch.messages, at);
        openBatch = undefined;
        break;
      case 'FTS':
        closeBatch();
        if (!openFile) problem(at, `FTS at line ${at} closes no file`);
        else count(line, 'FTS', openFile.batches, at);
        openFile = undefined;
        break;
    }
  });
  flush();
  closeBatch();
  if (openFile) problem(openFile.line, `the file that begins at line ${openFile.line} has no FTS`);
  if (!seen) problem(1, 'the file holds no MSH, BHS or FHS segment');
  batch.envelope = seen ?? 'bare';
  return batch;
}
