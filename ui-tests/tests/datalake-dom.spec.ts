import { expect, test } from '@playwright/test';
import * as fs from 'fs';
import { showSidebarPanel } from './hub';

/*
 * Benchmark (bench/datalake_dom.py runs it with DATALAKE_BENCH=1 and LAB_URL): scroll the
 * whole 100,000-file dataset in the DataLake panel and record how many rows are in the DOM
 * at any moment (a MutationObserver plus a count after every scroll step).
 */
test.skip(!process.env.DATALAKE_BENCH, 'run by bench/datalake_dom.py (DATALAKE_BENCH=1)');

test('DataLake: DOM rows while scrolling the 100k-file dataset', async ({ page }) => {
  test.setTimeout(900_000);
  const scope = process.env.BENCH_SCOPE ?? 'intertwin';
  const name = process.env.BENCH_DATASET ?? 'big.100k';
  const screens = Number(process.env.BENCH_STEP_SCREENS ?? '3');
  await page.goto(process.env.LAB_URL!);
  await expect(page.locator('#jp-main-dock-panel')).toBeVisible({ timeout: 120_000 });
  const panel = page.locator('#intertwin-datalake');
  await showSidebarPanel(page, 'intertwin-datalake');
  await expect(panel.getByTestId('itw-dl-who')).not.toBeEmpty({ timeout: 60_000 });
  await panel.getByTestId('itw-dl-scope').selectOption(scope);
  await panel.getByTestId('itw-dl-query').fill(name);
  await panel.getByTestId('itw-dl-search-button').click();
  await panel.locator(`[data-testid="itw-dl-result"][data-did="${scope}:${name}"]`).click();
  const t0 = Date.now();
  const list = panel.getByTestId('itw-dl-content');
  await expect(list.locator('[data-testid="itw-dl-row"][data-index="0"]')).not.toContainText(
    'loading',
    { timeout: 60_000 }
  );
  const firstPageMs = Date.now() - t0;
  const total = Number(await list.getAttribute('data-count'));

  const result = await list.evaluate(async (root, steps) => {
    const scroller = root.querySelector('.itw-dl-list-scroller') as HTMLElement;
    const rows = () => root.querySelectorAll('[data-testid="itw-dl-row"]').length;
    let max = rows();
    const obs = new MutationObserver(() => {
      max = Math.max(max, rows());
    });
    obs.observe(root, { childList: true, subtree: true });
    const frame = () => new Promise(r => requestAnimationFrame(() => r(null)));
    const step = Math.max(1, scroller.clientHeight * steps);
    let n = 0;
    const t = performance.now();
    for (let top = 0; top <= scroller.scrollHeight; top += step) {
      scroller.scrollTop = top;
      await frame();
      max = Math.max(max, rows());
      n++;
    }
    scroller.scrollTop = scroller.scrollHeight;
    await frame();
    await frame();
    max = Math.max(max, rows());
    obs.disconnect();
    return {
      max,
      steps: n,
      scroll_ms: Math.round(performance.now() - t),
      viewport_px: scroller.clientHeight,
      scroll_height_px: scroller.scrollHeight
    };
  }, screens);
  // the last row arrives (its page is fetched on scroll), with its real name
  const last = list.locator(`[data-testid="itw-dl-row"][data-index="${total - 1}"]`);
  await expect(last).not.toContainText('loading', { timeout: 60_000 });
  const lastText = (await last.textContent()) ?? '';
  const out = {
    ...result,
    rows_total: total,
    first_page_ms: firstPageMs,
    last_row: lastText.trim().slice(0, 80)
  };
  console.log(`DATALAKE_DOM ${JSON.stringify(out)}`);
  if (process.env.BENCH_OUTPUT) {
    fs.writeFileSync(process.env.BENCH_OUTPUT, JSON.stringify(out));
  }
  expect(result.max).toBeLessThanOrEqual(200);
});
