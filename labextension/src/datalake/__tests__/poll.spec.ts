import { pollDelay, POLL_FIRST_MS, POLL_MAX_MS } from '../poll';

describe('pollDelay', () => {
  it('backs off from 2.5 s to 30 s and stays there', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 50, 1e9].map(n => pollDelay(n));
    expect(delays).toEqual([2500, 5000, 10000, 20000, 30000, 30000, 30000, 30000, 30000]);
    expect(POLL_FIRST_MS).toBe(2500);
    expect(POLL_MAX_MS).toBe(30000);
  });

  it('costs a few polls a minute over an hour of replication, not 24', () => {
    let t = 0;
    let polls = 0;
    while (t < 3600_000) {
      t += pollDelay(polls++);
    }
    expect(polls).toBeLessThanOrEqual(125);
  });
});
