import { expect, test } from '@playwright/test';

import { openLab } from './hub';

/*
 * The Jobs panel against the real intertwin service on the testbed hub. Run by
 * tests/testbed/test_ui_jobs.py, which sets JOBS_UI=1 and starts alice's second server
 * (JOBS_SECOND, at UKRI) before, and checks through the service's API after that it was
 * cancelled.
 */
const shots = process.env.SCREENSHOT_DIR;
const SERVER = process.env.JOBS_SERVER ?? 'jobs';
const SECOND = process.env.JOBS_SECOND ?? 'jobs-second';

test.skip(!process.env.JOBS_UI, 'run by tests/testbed/test_ui_jobs.py (JOBS_UI=1)');

test('Jobs: my Vega session, its logs, cancel a second server, the notification', async ({
  page
}) => {
  page.on('console', m => {
    if (m.type() === 'warning' || m.type() === 'error') {
      console.log(`[browser ${m.type()}] ${m.text()}`);
    }
  });
  // a named server of its own, at Vega with two A100s
  await openLab(page, 'alice', SERVER, { profile: 'vega', gpus: 'gpu-2' });

  // the status bar says where this session runs, and opens the panel
  const status = page.getByTestId('itw-session-status');
  await expect(status).toContainText(/^Vega · 2 × A100 · batch job \S+$/, { timeout: 60_000 });
  await status.click();
  const panel = page.locator('#intertwin-jobs');
  await expect(panel).toBeVisible();
  // a wider sidebar, as a user would drag it to read logs
  const handle = page.locator('#jp-main-split-panel > .lm-SplitPanel-handle').first();
  const box = await handle.boundingBox();
  if (box) {
    await page.mouse.move(box.x + box.width / 2, box.y + 300);
    await page.mouse.down();
    await page.mouse.move(460, box.y + 300, { steps: 5 });
    await page.mouse.up();
  }

  // this session: running at Vega, in the site's words
  const mine = panel.locator(`[data-testid="itw-jobs-row"][data-server="${SERVER}"]`);
  await expect(mine).toHaveAttribute('data-state', 'running', { timeout: 60_000 });
  await expect(mine.getByTestId('itw-jobs-state')).toHaveText('running on vega-vk');
  await expect(mine.getByTestId('itw-jobs-site')).toHaveText('Vega');
  await expect(mine).toContainText('2 GPUs');
  await expect(mine.getByTestId('itw-jobs-batch')).toContainText('batch job');

  // its log: what the server printed, then followed (a line printed now arrives)
  await mine.getByTestId('itw-jobs-logs').click();
  const log = panel.getByTestId('itw-jobs-log');
  await expect(log.getByTestId('itw-jobs-log-state')).toHaveText('following');
  await expect(log.getByTestId('itw-jobs-log-text')).toContainText(
    'intertwin_lab: Jobs API forwarding to the intertwin service',
    { timeout: 60_000 }
  );
  const marker = `itw-marker-${Date.now()}`;
  // a 404 that jupyter_server logs with its path
  await page.evaluate(
    url => fetch(url).then(r => r.status),
    `/user/alice/${SERVER}/api/contents/${marker}`
  );
  await expect(log.getByTestId('itw-jobs-log-text')).toContainText(marker, { timeout: 60_000 });
  if (shots) {
    await page.waitForTimeout(500); // the log's scroll settles
    await page.screenshot({
      path: `${shots}/jobs.png`,
      clip: { x: 0, y: 0, width: 900, height: 860 }
    });
  }
  await log.getByTestId('itw-jobs-log-close').click();

  // the search and a filter
  await panel.getByTestId('itw-jobs-search').fill(SECOND);
  await expect(panel.getByTestId('itw-jobs-row').first()).toHaveAttribute('data-server', SECOND);
  await panel.getByTestId('itw-jobs-search').fill('');
  await panel.getByTestId('itw-jobs-filter-site').selectOption('vega');
  await expect(panel.locator(`[data-testid="itw-jobs-row"][data-server="${SECOND}"]`)).toHaveCount(
    0
  );
  await panel.getByTestId('itw-jobs-filter-site').selectOption('');

  // cancel the second server: the dialog names it and its site; keeping it changes nothing
  const second = panel.locator(
    `[data-testid="itw-jobs-active"] [data-testid="itw-jobs-row"][data-server="${SECOND}"]`
  );
  await expect(second).toHaveAttribute('data-state', 'running', { timeout: 120_000 });
  await second.getByTestId('itw-jobs-cancel').click();
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toContainText(`Cancel server "${SECOND}" at UKRI?`);
  await dialog.getByRole('button', { name: 'Keep it' }).click();
  await expect(dialog).toHaveCount(0);
  await expect(second).toHaveAttribute('data-state', 'running');
  await second.getByTestId('itw-jobs-cancel').click();
  await dialog.getByRole('button', { name: 'Cancel job' }).click();

  // it ends: in the history as cancelled, and a notification with a link to its logs
  const toast = page.locator('.Toastify__toast', { hasText: `server "${SECOND}" at UKRI ended` });
  await expect(toast).toBeVisible({ timeout: 120_000 });
  const ended = panel.locator(
    `[data-testid="itw-jobs-history"] [data-testid="itw-jobs-row"][data-server="${SECOND}"]`
  );
  await expect(ended.first()).toHaveAttribute('data-state', 'cancelled', { timeout: 60_000 });
  await toast.getByRole('button', { name: 'Show logs' }).click();
  await expect(log).toHaveAttribute('data-job', (await ended.first().getAttribute('data-job'))!);
  await expect(log.getByTestId('itw-jobs-log-state')).toHaveText('last lines');
});
