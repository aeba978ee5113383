import { describe, expect, it } from 'vitest';
import { CompletenessTracker, isTemporaryName } from '../src/watch/index.ts';

describe('when an upload is complete', () => {
  it('never takes a file under a temporary name', () => {
    for (const n of ['a.csv.filepart', 'a.csv.part', 'a.csv.tmp', 'A.CSV.PART']) expect(isTemporaryName(n)).toBe(true);
    expect(isTemporaryName('a.csv')).toBe(false);
    const t = new CompletenessTracker(1000);
    expect(t.observe('/in/a.csv.part', 10, 0, 60_000)).toBe(false);
  });

  it('takes a file written in place once size and mtime have been still for the quiet period', () => {
    const t = new CompletenessTracker(1000);
    expect(t.observe('/in/a.csv', 10, 10_000, 10_000)).toBe(false);
    expect(t.observe('/in/a.csv', 20, 10_500, 10_500)).toBe(false); // still growing
    expect(t.observe('/in/a.csv', 20, 10_500, 11_000)).toBe(false); // still for 500 ms
    expect(t.observe('/in/a.csv', 20, 10_500, 11_600)).toBe(true);
  });

  it('starts the quiet period again when the file changes', () => {
    const t = new CompletenessTracker(1000);
    t.observe('/in/a.csv', 10, 10_000, 10_000);
    expect(t.observe('/in/a.csv', 10, 10_900, 11_200)).toBe(false); // touched: mtime moved
    expect(t.observe('/in/a.csv', 10, 10_900, 11_800)).toBe(false);
    expect(t.observe('/in/a.csv', 10, 10_900, 12_000)).toBe(true);
  });

  it('takes at once a file whose last write is already a quiet period old (renamed into place, or waiting at start-up)', () => {
    const t = new CompletenessTracker(1000);
    expect(t.observe('/in/b.csv', 10, 5_000, 9_000)).toBe(true);
  });

  it('takes at once an upload renamed from its temporary name, without a quiet period', () => {
    const t = new CompletenessTracker(5000);
    expect(t.observe('/in/c.csv.filepart', 10, 1_000, 1_000)).toBe(false);
    t.retain(new Set(['/in/c.csv.filepart']));
    expect(t.observe('/in/c.csv', 20, 1_200, 1_300)).toBe(true);
    expect(t.observe('/in/d.csv', 20, 1_200, 1_300)).toBe(false); // no upload of that name was seen
  });
});
