/**
 * How often the panel asks Rucio again while a rule replicates: soon at first (a small
 * dataset is there within seconds), then twice as long each time up to `POLL_MAX_MS`, so a
 * transfer that takes hours costs one request every 30 s, not every 2.5 s. No imports: the
 * schedule is tested on its own (tests/lab/test_lab_units.py).
 */
export const POLL_FIRST_MS = 2500;
export const POLL_MAX_MS = 30_000;

/** The delay before poll number `attempt` (0 for the first after an action). */
export function pollDelay(attempt: number): number {
  const n = Math.max(0, Math.floor(attempt));
  return Math.min(POLL_MAX_MS, POLL_FIRST_MS * 2 ** Math.min(n, 16));
}
