/** A run's rows as they are written and read back — its input and its results, by COPY, a retried chunk replacing its results — on both stores. */
import { describe, expect, it } from 'vitest';
import type { NormalisedRow, RowResult } from '../src/model/index.ts';
import { appendRunInput, createRun, insertRunRows, readRunInput, readRunResults, streamRunResults, type Db } from '../src/store/index.ts';
import { STORES, tempDb, testPipeline } from './helpers.ts';

/** Text COPY must escape: backslashes, tabs, line breaks, quotes, and what is not ASCII. */
const AWKWARD = 'O\'Brien\t"Ann"\\ \n\r— Zoë 雪';

function row(index: number, outcome: RowResult['outcome'], note = ''): RowResult {
  const base = { index, line: index + 2, recordId: `r${index}${note}` };
  if (outcome === 'matched') return { ...base, outcome, patientId: `p${index}`, score: 21.25 + index / 3, candidates: [{ patientId: `p${index}`, score: 21.25, probability: 0.99999, comparisons: [] }] };
  if (outcome === 'invalid') return { ...base, outcome, candidates: [], problems: [{ field: 'birthDate', code: 'DATE_UNPARSEABLE', message: `"${AWKWARD}${note}" is not a date` }] };
  return { ...base, outcome, candidates: [] };
}

async function newRun(db: Db, id: string): Promise<void> {
  await createRun(db, { id, partner: 'test-school', fileName: `${id}.csv`, fileSha256: id, receivedAt: '2025-01-01T00:00:00.000Z', state: 'running', pipeline: testPipeline() });
}

describe.each(STORES)('row results on %s', (kind) => {
  it('reads back what was written, field for field, in row order', async () => {
    const { db } = await tempDb(kind);
    await newRun(db, 'run-a');
    const rows = [row(0, 'matched'), row(1, 'invalid'), row(2, 'no_match'), row(3, 'matched')];
    await insertRunRows(db, 'run-a', rows.slice(2));
    await insertRunRows(db, 'run-a', rows.slice(0, 2));
    expect(await readRunResults(db, 'run-a')).toEqual(rows);
  });

  it('a retried chunk replaces its rows, and rows it did not have before are added', async () => {
    const { db } = await tempDb(kind);
    await newRun(db, 'run-b');
    await db.transaction((tx) => insertRunRows(tx, 'run-b', [row(0, 'matched'), row(1, 'invalid'), row(2, 'matched')]));
    const retried = [row(1, 'matched', '-again'), row(2, 'invalid', '-again'), row(3, 'no_match', '-again')];
    // Two batches in one transaction, the second a retry of rows of the first (each stage table is its own).
    await db.transaction(async (tx) => {
      await insertRunRows(tx, 'run-b', retried);
      await insertRunRows(tx, 'run-b', retried);
    });
    expect(await readRunResults(db, 'run-b')).toEqual([row(0, 'matched'), ...retried]);
  });

  it('an error other than a row already there is not taken for a retry', async () => {
    const { db } = await tempDb(kind);
    await expect(insertRunRows(db, 'no-such-run', [row(0, 'matched')])).rejects.toMatchObject({ code: '23503' });
    expect(await readRunResults(db, 'no-such-run')).toEqual([]);
  });

  it("stores a queued run's normalised rows and hands a chunk of them back as they were", async () => {
    const { db } = await tempDb(kind);
    await newRun(db, 'run-d');
    const person = { given: AWKWARD, middle: '', family: 'NGUYỄN', suffix: '', birthDate: '2014-03-09', sex: 'female' as const, street: '12\tOAK ST', city: 'SPRINGFIELD', state: 'IL', zip: '62701', phone: '' };
    const rows: NormalisedRow[] = Array.from({ length: 5 }, (_, i) =>
      i === 3 ? { kind: 'invalid', line: i + 2, index: i, recordId: `r${i}`, problems: [{ field: 'birthDate', code: 'DATE_MISSING', message: AWKWARD }] } : { kind: 'valid', line: i + 2, index: i, recordId: `r${i}`, person, identifiers: [], warnings: [] },
    );
    await appendRunInput(db, 'run-d', rows.slice(0, 2));
    await appendRunInput(db, 'run-d', rows.slice(2));
    expect(await readRunInput(db, 'run-d', 1, 4)).toEqual(rows.slice(1, 4));
  });

  it('pages through a run with gaps in its row indexes', async () => {
    const { db } = await tempDb(kind);
    await newRun(db, 'run-c');
    const rows = [0, 1, 7, 8, 9, 30].map((i) => row(i, 'no_match'));
    await insertRunRows(db, 'run-c', rows);
    const pages: number[][] = [];
    for await (const page of streamRunResults(db, 'run-c', 4)) pages.push(page.map((r) => r.index));
    expect(pages).toEqual([[0, 1], [7], [8, 9], [30]]);
  });
});
