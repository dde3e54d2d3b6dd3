import { expect, test } from '@playwright/test';

import { openLab } from './hub';

/*
 * The Usage panel against the real intertwin service on the testbed hub. Run by
 * tests/testbed/test_ui_usage.py, which sets USAGE_UI=1 after alice's Vega session (with A100s)
 * ran and was stopped, and passes its job id (USAGE_JOB).
 */
const shots = process.env.SCREENSHOT_DIR;
const SERVER = process.env.USAGE_SERVER ?? 'usage';
const JOB = process.env.USAGE_JOB ?? '';

test.skip(!process.env.USAGE_UI, 'run by tests/testbed/test_ui_usage.py (USAGE_UI=1)');

test('Usage: Vega with A100 GPU hours, the PSNC budget, the chart, the CSV', async ({ page }) => {
  page.on('console', m => {
    if (m.type() === 'warning' || m.type() === 'error') {
      console.log(`[browser ${m.type()}] ${m.text()}`);
    }
  });
  // a session of its own at UKRI (no batch queue)
  await openLab(page, 'alice', SERVER, { profile: 'ukri' });

  // the left sidebar's Usage tab, after Jobs
  const tabs = page.locator('#jp-left-stack ~ .jp-SideBar li, .jp-SideBar.jp-mod-left li');
  const ids = await tabs.evaluateAll(els => els.map(e => e.getAttribute('data-id')));
  expect(ids.indexOf('intertwin-usage')).toBe(ids.indexOf('intertwin-jobs') + 1);
  await page.locator('.jp-SideBar li[data-id="intertwin-usage"]').click();
  const panel = page.locator('#intertwin-usage');
  await expect(panel).toBeVisible();
  // a wider sidebar, as a user would drag it to read the tables
  const handle = page.locator('#jp-main-split-panel > .lm-SplitPanel-handle').first();
  const box = await handle.boundingBox();
  if (box) {
    await page.mouse.move(box.x + box.width / 2, box.y + 300);
    await page.mouse.down();
    await page.mouse.move(420, box.y + 300, { steps: 5 });
    await page.mouse.up();
  }

  // this month by site: Vega with A100 GPU hours
  const vega = panel.locator('[data-testid="itw-usage-site"][data-site="vega"]');
  await expect(vega).toBeVisible({ timeout: 60_000 });
  await expect(vega).toContainText('Vega');
  await expect(vega.getByTestId('itw-usage-gpu')).toContainText(/A100 (0\.0[1-9]|0\.[1-9]|[1-9])/);

  // alice's VO's budget at PSNC, a bar with its sentence
  const psnc = panel.locator('[data-testid="itw-usage-budget"][data-site="psnc"]');
  await expect(psnc).toBeVisible();
  await expect(psnc).toContainText('PSNC · dev.intertwin.eu · GPU hours');
  await expect(psnc.getByTestId('itw-usage-budget-figures')).toContainText('/ 500 h');
  await expect(psnc.getByRole('progressbar')).toHaveAttribute('aria-valuemax', '500');
  await expect(psnc.getByTestId('itw-usage-budget-sentence')).not.toBeEmpty();

  // the chart, drawn by JupyterLab's Vega-Lite renderer (an svg or a canvas), by week too
  const chart = panel.getByTestId('itw-usage-chart');
  await expect(chart.locator('svg, canvas').first()).toBeVisible({ timeout: 60_000 });
  await panel.getByTestId('itw-usage-unit-week').click();
  await expect(panel.getByTestId('itw-usage-unit-week')).toHaveAttribute('aria-pressed', 'true');
  await expect(chart.locator('svg, canvas').first()).toBeVisible({ timeout: 60_000 });
  if (shots) {
    await page.screenshot({
      path: `${shots}/usage.png`,
      clip: { x: 0, y: 0, width: 900, height: 860 }
    });
  }

  // the CSV link answers this month's rows, the Vega job's among them
  const href = await panel.getByTestId('itw-usage-csv').getAttribute('href');
  expect(href).toContain('intertwin/usage.csv');
  const csv = await page.request.get(new URL(href!, page.url()).toString());
  expect(csv.status()).toBe(200);
  expect(csv.headers()['content-type']).toContain('text/csv');
  expect(csv.headers()['content-disposition']).toContain('attachment');
  const text = await csv.text();
  expect(text.split(/\r?\n/)[0]).toContain('gpu_hours');
  expect(text).toContain(JOB);

  // the most expensive jobs: a row opens the Jobs panel at that job
  const row = panel.getByTestId('itw-usage-job').first();
  await expect(row).toBeVisible();
  const id = await row.getAttribute('data-job');
  await row.click();
  const jobs = page.locator('#intertwin-jobs');
  await expect(jobs).toBeVisible();
  await expect(jobs.getByTestId('itw-jobs-search')).toHaveValue(id!);
});
