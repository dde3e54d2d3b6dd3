/**
 * How often the panel asks Rucio again while a rule replicates: soon at first (a small
 * dataset is there within seconds), then twice as long each time up to `POLL_MAX_MS`, so a
 * transfer that takes hours costs one request every 30 s, not every 2.5 s. Both are defaults of
 * the DataLake settings (`pollSeconds`, `pollMaxSeconds`).
 */
export const POLL_FIRST_MS = 2500;
export const POLL_MAX_MS = 30_000;

/** The delay before poll number `attempt` (0 for the first after an action). */
export function pollDelay(attempt: number, firstMs = POLL_FIRST_MS, maxMs = POLL_MAX_MS): number {
  const n = Math.max(0, Math.floor(attempt));
  return Math.min(maxMs, firstMs * 2 ** Math.min(n, 16));
}
