// Unit tests of the DataLake panel's pure parts, compiled from labextension/src by
// tests/lab/test_lab_units.py (LIB: the compiled folder) and run with `node --test`.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { pollDelay, POLL_FIRST_MS, POLL_MAX_MS } = require(`${process.env.LIB}/datalake/poll.js`);
const { RowSource } = require(`${process.env.LIB}/datalake/rows.js`);

const flush = () => new Promise(resolve => setImmediate(resolve));
async function settle() {
  for (let i = 0; i < 5; i++) {
    await flush();
  }
}

test('polling backs off from 2.5 s to 30 s and stays there', () => {
  const delays = [0, 1, 2, 3, 4, 5, 6, 50, 1e9].map(pollDelay);
  assert.deepStrictEqual(delays, [2500, 5000, 10000, 20000, 30000, 30000, 30000, 30000, 30000]);
  assert.strictEqual(POLL_FIRST_MS, 2500);
  assert.strictEqual(POLL_MAX_MS, 30000);
  // an hour of replication costs a few polls a minute, not 24
  let t = 0;
  let polls = 0;
  while (t < 3600_000) {
    t += pollDelay(polls++);
  }
  assert.ok(polls <= 125, `${polls} polls in an hour`);
});

test('an offset source keeps only pages near the viewport and fetches dropped ones again', async () => {
  const fetched = [];
  const source = new RowSource(
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
    assert.strictEqual(source.get(start), start);
    assert.ok(source.held <= 5 * 200, `${source.held} rows held`);
  }
  assert.strictEqual(source.count, 100_000);
  assert.strictEqual(source.get(0), undefined); // far from the viewport: dropped
  const before = fetched.length;
  source.ensure(0, 40);
  await settle();
  assert.strictEqual(source.get(0), 0);
  assert.strictEqual(fetched.length, before + 1);
  source.dispose();
});

test('a cursor source grows at the end, evicts far pages and refetches them by cursor', async () => {
  const cursors = [];
  const TOTAL = 5_000;
  const source = new RowSource(
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
  assert.strictEqual(source.count, 1); // one "loading" row before the first page
  let shown = 0;
  while (source.total === null) {
    source.ensure(shown, shown + 30);
    await settle();
    shown = source.count - 1;
    assert.ok(source.held <= 4 * 100, `${source.held} rows held`);
  }
  assert.strictEqual(source.total, TOTAL);
  assert.strictEqual(source.count, TOTAL);
  assert.strictEqual(source.get(TOTAL - 1), `row ${TOTAL - 1}`);
  assert.strictEqual(source.get(150), undefined);
  source.ensure(150, 180);
  await settle();
  assert.strictEqual(source.get(150), 'row 150');
  assert.strictEqual(cursors[cursors.length - 1], '100'); // page 1 again, by its cursor
  source.dispose();
});
