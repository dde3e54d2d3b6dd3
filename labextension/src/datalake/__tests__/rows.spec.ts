import { RowSource } from '../rows';

/** Let the fetches started by `ensure` resolve and their pages land. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setImmediate(resolve));
  }
}

describe('RowSource', () => {
  it('keeps only the offset pages near the viewport and fetches dropped ones again', async () => {
    const fetched: number[] = [];
    const source = new RowSource<number>(
      {
        kind: 'offset',
        fetch: async (offset, limit) => {
          fetched.push(offset);
          const n = Math.max(0, Math.min(limit, 100_000 - offset));
          return { items: Array.from({ length: n }, (_, i) => offset + i), total: 100_000 };
        }
      },
      200,
      5
    );
    for (let start = 0; start < 100_000; start += 600) {
      source.ensure(start, start + 40);
      await settle();
      expect(source.get(start)).toBe(start);
      expect(source.held).toBeLessThanOrEqual(5 * 200);
    }
    expect(source.count).toBe(100_000);
    expect(source.get(0)).toBeUndefined(); // far from the viewport: dropped
    const before = fetched.length;
    source.ensure(0, 40);
    await settle();
    expect(source.get(0)).toBe(0);
    expect(fetched.length).toBe(before + 1);
    source.dispose();
  });

  it('grows a cursor source at the end, evicts far pages and refetches them by cursor', async () => {
    const cursors: (string | null)[] = [];
    const TOTAL = 5_000;
    const source = new RowSource<string>(
      {
        kind: 'cursor',
        fetch: async (cursor, limit) => {
          cursors.push(cursor);
          const offset = cursor === null ? 0 : Number(cursor);
          const n = Math.max(0, Math.min(limit, TOTAL - offset));
          const next = offset + n < TOTAL ? String(offset + n) : null;
          return { items: Array.from({ length: n }, (_, i) => `row ${offset + i}`), next };
        }
      },
      100,
      4
    );
    expect(source.count).toBe(1); // one "loading" row before the first page
    let shown = 0;
    while (source.total === null) {
      source.ensure(shown, shown + 30);
      await settle();
      shown = source.count - 1;
      expect(source.held).toBeLessThanOrEqual(4 * 100);
    }
    expect(source.total).toBe(TOTAL);
    expect(source.count).toBe(TOTAL);
    expect(source.get(TOTAL - 1)).toBe(`row ${TOTAL - 1}`);
    expect(source.get(150)).toBeUndefined();
    source.ensure(150, 180);
    await settle();
    expect(source.get(150)).toBe('row 150');
    expect(cursors[cursors.length - 1]).toBe('100'); // page 1 again, by its cursor
    source.dispose();
  });

  it('shows a failed page as an error and fetches it again on retry', async () => {
    let fail = true;
    const source = new RowSource<number>({
      kind: 'offset',
      fetch: async (offset, limit) => {
        if (fail) {
          throw new Error('Rucio is down');
        }
        return { items: [1, 2, 3], total: 3 };
      }
    });
    source.ensure(0, 10);
    await settle();
    expect(source.error).toBe('Rucio is down');
    fail = false;
    source.retry();
    await settle();
    expect(source.error).toBeNull();
    expect(source.count).toBe(3);
    expect(source.get(2)).toBe(3);
    source.dispose();
  });
});
