import { expect, Locator, Page, test } from '@playwright/test';

import { openLab, showSidebarPanel } from './hub';

/*
 * `%%offload` in a notebook cell against the real intertwin service on the testbed hub: the
 * cell's widget goes queued → running → succeeded in the site's words, the next cell prints
 * the returned variable, the Jobs panel lists the batch cell and opens the notebook at it; a
 * second cell is cancelled with its widget's Cancel button and the Jobs panel says cancelled.
 * Run by tests/testbed/test_ui_offload.py (OFFLOAD_UI=1), which checks the jobs through the
 * service's API after and stops the server.
 */
const SERVER = process.env.OFFLOAD_SERVER ?? 'offload';
const shots = process.env.SCREENSHOT_DIR;

test.skip(!process.env.OFFLOAD_UI, 'run by tests/testbed/test_ui_offload.py (OFFLOAD_UI=1)');

/** Type `code` into the notebook's last cell and run it (Shift+Enter adds the next cell);
 * that cell, by its index (`last()` would follow the new one). */
async function runInLastCell(page: Page, nb: Locator, code: string): Promise<Locator> {
  const cell = nb.locator('.jp-Cell').nth((await nb.locator('.jp-Cell').count()) - 1);
  const editor = cell.locator('.jp-InputArea-editor');
  await editor.click();
  await page.keyboard.type(code);
  await expect(editor).toContainText(code.split('\n')[0]);
  await page.keyboard.press('Shift+Enter');
  return cell;
}

test('%%offload: the widget, the result, the Jobs panel, Cancel', async ({ page }) => {
  page.on('console', m => {
    if (m.type() === 'warning' || m.type() === 'error') {
      console.log(`[browser ${m.type()}] ${m.text()}`);
    }
  });
  // a named server of its own at UKRI (no batch queue): the cells go to Vega
  await openLab(page, 'alice', SERVER, { profile: 'ukri' });
  await page.locator('.jp-LauncherCard[data-category="Notebook"]').first().click();
  const nb = page.locator('.jp-NotebookPanel').last();
  await expect(nb).toBeVisible({ timeout: 60_000 });

  // the kernel answers (a cell run while the kernel is still starting may never be answered,
  // so it is run again until it is); by then the widget manager has connected to the kernel
  const first = nb.locator('.jp-Cell').first();
  await first.locator('.jp-InputArea-editor').click();
  await page.keyboard.type("print('kernel ready')");
  await expect
    .poll(
      async () => {
        await first.locator('.jp-InputArea-editor').click();
        await page.keyboard.press('Control+Enter');
        return first
          .locator('.jp-OutputArea-output')
          .filter({ hasText: 'kernel ready' })
          .first()
          .waitFor({ timeout: 20_000 })
          .then(() => true)
          .catch(() => false);
      },
      { timeout: 180_000, intervals: [1000] }
    )
    .toBe(true);
  // a new cell below it, for the next code
  await page.keyboard.press('Escape');
  await page.keyboard.press('b');

  // every state the page's offload widgets show, in order (the badge is re-rendered on each
  // change, so a mutation observer sees each one)
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as any).itwOffloadStates = seen;
    new MutationObserver(() => {
      const el = document.querySelector('.itw-offload-state');
      const state = el?.getAttribute('data-state');
      if (state && seen[seen.length - 1] !== state) {
        seen.push(state);
      }
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
  });

  const offloaded = await runInLastCell(
    page,
    nb,
    "%%offload --site vega --out y\nimport time\nprint('hello from the batch cell', flush=True)\ntime.sleep(15)\ny = 6 * 7"
  );
  const badge = offloaded.locator('.itw-offload-state');
  await expect(badge).toHaveAttribute('data-state', 'running', { timeout: 120_000 });
  await expect(badge).toContainText('Vega: running on vega-vk');
  await expect(offloaded.locator('.itw-offload-log')).toContainText('hello from the batch cell', {
    timeout: 60_000
  });
  await expect(offloaded.locator('.itw-offload-cancel')).toBeVisible();
  if (shots) {
    await offloaded.screenshot({ path: `${shots}/offload-widget.png` });
  }
  await expect(badge).toHaveAttribute('data-state', 'succeeded', { timeout: 120_000 });
  await expect(badge).toContainText(/Vega: succeeded \(batch job \S+, exit code 0\)/);
  const states: string[] = await page.evaluate(() => (window as any).itwOffloadStates);
  expect(states.indexOf('queued')).toBeGreaterThanOrEqual(0);
  expect(states.indexOf('queued')).toBeLessThan(states.indexOf('running'));
  expect(states[states.length - 1]).toBe('succeeded');
  // the widget, not text besides it
  await expect(offloaded.locator('.jp-OutputArea-output')).toHaveCount(1);
  const jobId = (await badge.getAttribute('data-job'))!;
  expect(jobId).toBeTruthy();

  // the next cell has the result
  const next = await runInLastCell(page, nb, 'print(y)');
  await expect(next.locator('.jp-OutputArea-output')).toHaveText('42', { timeout: 60_000 });

  // the Jobs panel lists the batch cell, succeeded, and opens the notebook at it
  await showSidebarPanel(page, 'intertwin-jobs');
  const panel = page.locator('#intertwin-jobs');
  // (in the history: the active list may still hold it as it was a moment ago)
  const row = panel.locator(
    `[data-testid="itw-jobs-history"] [data-testid="itw-jobs-row"][data-job="${jobId}"]`
  );
  await expect(row).toHaveAttribute('data-state', 'succeeded', { timeout: 60_000 });
  await expect(row.getByTestId('itw-jobs-site')).toHaveText('Vega');
  await nb.locator('.jp-Cell').last().click(); // another cell is the active one
  await row.getByTestId('itw-jobs-open-cell').click();
  await expect(nb.locator('.jp-Cell.jp-mod-active')).toContainText('%%offload --site vega --out y');

  // a second batch cell, cancelled from its widget
  await nb.locator('.jp-Cell').last().click();
  const long = await runInLastCell(
    page,
    nb,
    "%%offload --site vega --out z\nimport time\nprint('waiting', flush=True)\ntime.sleep(600)\nz = 1"
  );
  const longBadge = long.locator('.itw-offload-state');
  await expect(longBadge).toHaveAttribute('data-state', 'running', { timeout: 120_000 });
  const longId = (await longBadge.getAttribute('data-job'))!;
  await long.locator('.itw-offload-cancel').click();
  await expect(longBadge).toHaveAttribute('data-state', 'cancelled', { timeout: 120_000 });
  // the cell ends with one line saying so
  await expect(long.locator('.jp-OutputArea-output').last()).toContainText(
    `OffloadCancelled: The batch cell ${longId} is cancelled at Vega`,
    { timeout: 60_000 }
  );
  const cancelled = panel.locator(
    `[data-testid="itw-jobs-history"] [data-testid="itw-jobs-row"][data-job="${longId}"]`
  );
  await expect(cancelled).toHaveAttribute('data-state', 'cancelled', { timeout: 120_000 });
});
