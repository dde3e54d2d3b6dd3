import { expect, Page, test } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

import { openLab, showSidebarPanel } from './hub';

/*
 * The DataLake panel against a real Rucio. Run by tests/testbed/test_ui_datalake.py, which
 * sets DATALAKE_UI=1 and RUCIO_CONTROL_URL (POST /stop, /start: the Rucio server itself).
 * Two ways in: HUB_URL (log in as alice, spawn a Vega session on the testbed hub) or LAB_URL
 * (a plain `jupyter lab` URL with its token, for development).
 */
const shots = process.env.SCREENSHOT_DIR;
const control = process.env.RUCIO_CONTROL_URL;
const outDir = process.env.UI_OUTPUT_DIR ?? 'test-results';
const DATASET = process.env.DATALAKE_DATASET ?? 'climate.era5.2021';

test.skip(!process.env.DATALAKE_UI, 'run by tests/testbed/test_ui_datalake.py (DATALAKE_UI=1)');

/** JupyterLab at LAB_URL (development), else alice's Vega session on the hub. */
async function reachLab(page: Page): Promise<void> {
  if (process.env.LAB_URL) {
    await page.goto(process.env.LAB_URL);
  } else {
    // a named server of its own, so it does not meet spawn.spec.ts's "ui" server
    await openLab(page, 'alice', 'datalake', { profile: 'vega' });
  }
  await expect(page.locator('#jp-main-dock-panel')).toBeVisible({ timeout: 120_000 });
}

async function rucio(action: 'stop' | 'start'): Promise<void> {
  if (!control) {
    throw new Error('RUCIO_CONTROL_URL is not set');
  }
  // the control server answers once Rucio is down or up again (its own wait is 60 s)
  const r = await fetch(`${control}/${action}`, {
    method: 'POST',
    signal: AbortSignal.timeout(120_000)
  });
  if (!r.ok) {
    throw new Error(`Rucio ${action}: ${r.status} ${await r.text()}`);
  }
}

test('DataLake: search, open, make available at Vega, copy a path; Rucio down is explained', async ({
  page,
  context
}) => {
  // each phase has its own waits (a spawn, a replication, a 100k listing, two Rucio restarts);
  // their sum on a loaded machine is more than the config's 240 s
  test.setTimeout(600_000);
  // where a failure happened and how long each phase took, in the output pytest shows
  const t0 = Date.now();
  const phase = (name: string): void =>
    console.log(`[phase +${((Date.now() - t0) / 1000).toFixed(1)} s] ${name}`);
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  // the browser's warnings and errors end up in the test output, where a failure is read
  page.on('console', m => {
    if (m.type() === 'warning' || m.type() === 'error') {
      console.log(`[browser ${m.type()}] ${m.text()}`);
    }
  });
  phase('open JupyterLab');
  await reachLab(page);

  // the panel, with its own icon in the left sidebar
  const panel = page.locator('#intertwin-datalake');
  await showSidebarPanel(page, 'intertwin-datalake');
  await expect(panel.getByTestId('itw-dl-who')).toContainText('alice', { timeout: 30_000 });
  // a wider sidebar, as a user would drag it for paths
  const handle = page.locator('#jp-main-split-panel > .lm-SplitPanel-handle').first();
  const box = await handle.boundingBox();
  if (box) {
    await page.mouse.move(box.x + box.width / 2, box.y + 300);
    await page.mouse.down();
    await page.mouse.move(500, box.y + 300, { steps: 5 });
    await page.mouse.up();
  }
  await expect(panel.getByTestId('itw-dl-start')).toBeVisible();

  phase('search');
  // search: scope, name with a wildcard, type, and a metadata filter from the builder
  await panel.getByTestId('itw-dl-scope').selectOption('intertwin');
  await panel.getByTestId('itw-dl-query').fill('climate*');
  await panel.getByTestId('itw-dl-type').selectOption('dataset');
  await panel.getByTestId('itw-dl-add-filter').click();
  const row = panel.getByTestId('itw-dl-filter-row').first();
  await row.getByLabel('Metadata key').fill('datatype');
  await row.getByLabel('Metadata value').fill('climate');
  await expect(panel.getByTestId('itw-dl-filter-text')).toHaveText('datatype=climate');
  await panel.getByTestId('itw-dl-search-button').click();
  const result = panel.locator(`[data-testid="itw-dl-result"][data-did="intertwin:${DATASET}"]`);
  await expect(result).toBeVisible({ timeout: 30_000 });
  await expect(panel.getByTestId('itw-dl-result')).toHaveCount(2);

  // open the dataset: replicas per RSE, not here yet, its files
  await result.click();
  const details = panel.getByTestId('itw-dl-details');
  await expect(details.getByTestId('itw-dl-details-name')).toHaveText(`intertwin:${DATASET}`);
  await expect(details.getByTestId('itw-dl-replicas')).toContainText('EODC', { timeout: 30_000 });
  const here = details.getByTestId('itw-dl-here');
  await expect(here).toHaveAttribute('data-state', 'NOT_AVAILABLE');
  await expect(details.getByTestId('itw-dl-content')).toBeVisible();
  await expect(details.getByTestId('itw-dl-content-head')).toContainText('Files · 4');

  phase('make available');
  // make it available at this site (Vega), for one day, and watch the rule finish
  const make = details.getByTestId('itw-dl-make-available');
  await expect(make).toContainText(/Make available at \S/);
  await details.getByTestId('itw-dl-lifetime').selectOption('1');
  await make.click();
  await expect(here).toHaveAttribute('data-state', 'AVAILABLE', { timeout: 120_000 });
  await expect(details.getByTestId('itw-dl-content-head')).toContainText('Local paths');
  const paths = details.getByTestId('itw-dl-path');
  await expect(paths).toHaveCount(4, { timeout: 30_000 });

  phase('copy a path');
  // copy a path: the clipboard holds it, and the file is there (checked by the pytest side)
  const first = (await paths.first().textContent())!.trim();
  await details.getByTestId('itw-dl-copy-path').first().click();
  await expect(details.getByTestId('itw-dl-copied')).toContainText(first);
  const clip = await page.evaluate(() => navigator.clipboard.readText());
  expect(clip).toBe(first);
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'copied-path.txt'), clip);
  if (shots) {
    await page.waitForTimeout(1000);
    await panel.screenshot({ path: `${shots}/datalake.png` });
  }

  phase('open the folder');
  // open the folder: the scratch mount is outside this server's root here, and the panel
  // says so (with a copy action) instead of pretending
  await details.getByTestId('itw-dl-open-folder').first().click();
  const outside = page.getByText(/outside this JupyterLab's root folder/).first();
  const browser = page.locator('#filebrowser .jp-BreadCrumbs', { hasText: 'VEGA-DCACHE' });
  await expect(outside.or(browser).first()).toBeVisible();
  if (await browser.isVisible()) {
    await page.locator('li[data-id="intertwin-datalake"]').click();
  }

  phase('add to notebook');
  // add to notebook: rucio-jupyterlab's `rucio_attachments` metadata, saved in the .ipynb
  await page.locator('.jp-LauncherCard[data-category="Notebook"]').first().click();
  const nb = page.locator('.jp-NotebookPanel').last();
  await expect(nb).toBeVisible({ timeout: 60_000 });
  await details.getByTestId('itw-dl-add-notebook').click();
  const dialog = page.locator('.jp-Dialog');
  await dialog.locator('input').fill('era5');
  await dialog.locator('.jp-mod-accept').click();
  await expect(dialog).toHaveCount(0);
  // the kernel is set once it has started (the notebook's kernel may still be starting); its
  // toast is transient, so the state is checked in the kernel itself further down
  await nb.locator('[data-command="docmanager:save"]').click();
  // JupyterLab offers to rename an untitled notebook on its first save
  await dialog
    .waitFor({ state: 'visible', timeout: 5000 })
    .then(() => dialog.locator('.jp-mod-accept').click())
    .catch(() => undefined);
  await expect(dialog).toHaveCount(0);
  // the saved .ipynb holds the attachment (read back through the contents API)
  const readAttachments = () =>
    page.evaluate(async () => {
      const cfg = JSON.parse(document.getElementById('jupyter-config-data')!.textContent!);
      // cookie-authenticated API calls need the XSRF token, GETs too under JupyterHub
      const xsrf = document.cookie.match(/_xsrf=([^;]+)/)?.[1] ?? '';
      const get = async (p: string) =>
        (
          await fetch(`${cfg.baseUrl}api/contents/${p}?content=1&_=${Date.now()}`, {
            headers: { 'X-XSRFToken': decodeURIComponent(xsrf) }
          })
        ).json();
      const listing = await get('');
      const nbs = (
        (listing.content ?? []) as { path: string; last_modified: string; type: string }[]
      )
        .filter(f => f.type === 'notebook')
        .sort((a, b) => b.last_modified.localeCompare(a.last_modified));
      if (nbs.length === 0) {
        return null;
      }
      // a notebook being saved may not be readable yet (an error body, no content): look again
      const file = await get(nbs[0].path);
      return file?.content?.metadata?.rucio_attachments ?? null;
    });
  await expect
    .poll(readAttachments, { timeout: 30_000 })
    .toEqual([{ did: `intertwin:${DATASET}`, variableName: 'era5', type: 'collection' }]);

  phase('the kernel has it');
  // ... and the kernel has it: `era5` lists the local paths of the files (the comm protocol of
  // rucio-jupyterlab), readable from code in the notebook
  const cell = nb.locator('.jp-Cell .jp-InputArea-editor').first();
  await cell.click();
  await page.keyboard.type("print(len(era5), era5[0], len(open(era5[0], 'rb').read()))");
  // run in place until the kernel has the variable (a NameError while it is still starting)
  const output = nb.locator('.jp-Cell').first().locator('.jp-OutputArea-output').first();
  await expect
    .poll(
      async () => {
        await cell.click();
        await page.keyboard.press('Control+Enter');
        await expect(output).toBeVisible({ timeout: 30_000 });
        return (await output.textContent()) ?? '';
      },
      { timeout: 90_000, intervals: [1000, 2000, 5000] }
    )
    .toContain(`4 ${first} 4096`);

  phase('my replicas');
  // My replicas: the rule is there, OK, with an expiry
  await panel.getByTestId('itw-dl-tab-replicas').click();
  const rule = panel.locator('[data-testid="itw-dl-rule"]', { hasText: `intertwin:${DATASET}` });
  await expect(rule).toHaveAttribute('data-state', 'OK', { timeout: 30_000 });

  phase('extend while Rucio is down');
  // an Extend that fails (Rucio down) is retried by its Retry: the rule gets the new lifetime
  const facts = rule.locator('.itw-dl-rule-facts');
  const factsBefore = (await facts.textContent()) ?? '';
  const lifetime = rule.getByLabel('New lifetime');
  const choices = await lifetime.locator('option').count();
  await lifetime.selectOption({ index: choices - 1 });
  const actionError = panel.getByTestId('itw-dl-action-error');
  await rucio('stop');
  try {
    await rule.getByTestId('itw-dl-extend').click();
    await expect(actionError).toBeVisible({ timeout: 60_000 });
    await expect(actionError).toContainText(/Rucio/i);
  } finally {
    await rucio('start');
  }
  phase('retry the extend');
  await actionError.getByTestId('itw-dl-retry').click();
  await expect(actionError).toHaveCount(0, { timeout: 60_000 });
  await expect(facts).not.toHaveText(factsBefore, { timeout: 30_000 });
  await panel.getByTestId('itw-dl-tab-explore').click();

  phase('page the 100k dataset');
  // the 100k-file dataset pages as it scrolls, with a bounded DOM
  await panel.getByTestId('itw-dl-query').fill('big*');
  await panel.getByTestId('itw-dl-type').selectOption('all');
  await panel.getByTitle('Remove this filter').click();
  await expect(panel.getByTestId('itw-dl-filter-row')).toHaveCount(0);
  await panel.getByTestId('itw-dl-search-button').click();
  await panel.locator('[data-testid="itw-dl-result"][data-did="intertwin:big.100k"]').click();
  await expect(details.getByTestId('itw-dl-content-head')).toContainText('100,000', {
    timeout: 60_000
  });
  const scroller = details.locator('.itw-dl-list-scroller');
  for (const frac of [0.25, 0.5, 1]) {
    await scroller.evaluate((el, f) => {
      el.scrollTop = f * el.scrollHeight;
    }, frac);
    await page.waitForTimeout(300);
    expect(await details.getByTestId('itw-dl-row').count()).toBeLessThanOrEqual(200);
  }
  // the server reads Rucio's stream only as far as asked: the last page waits for all of it
  await expect(details.locator('[data-testid="itw-dl-row"][data-index="99999"]')).toContainText(
    'big.100k.099999.dat',
    { timeout: 120_000 }
  );

  phase('search while Rucio is down');
  // Rucio stops: the panel says so, with the server's sentence and a Retry that recovers
  await rucio('stop');
  try {
    await panel.getByTestId('itw-dl-search-button').click();
    const banner = panel.getByTestId('itw-dl-error');
    await expect(banner).toBeVisible({ timeout: 60_000 });
    await expect(banner).toContainText(/Rucio/i);
    if (shots) {
      await panel.screenshot({ path: `${shots}/datalake-error.png` });
    }
  } finally {
    await rucio('start');
  }
  phase('retry the search');
  await panel.getByTestId('itw-dl-retry').click();
  await expect(
    panel.locator('[data-testid="itw-dl-result"][data-did="intertwin:big.100k"]')
  ).toBeVisible({
    timeout: 60_000
  });
  phase('done');
});

test('DataLake settings: the lifetime choices come from the setting registry', async ({ page }) => {
  await reachLab(page);
  // JupyterLab's settings API at {base}lab/api/settings/<plugin id>, as the Settings Editor saves
  const labBase = /^(.*?\/lab)(\/|\?|$)/.exec(page.url())?.[1];
  expect(labBase).toBeTruthy();
  const save = (raw: string): Promise<number> =>
    page.evaluate(
      async ({ url, raw }) => {
        const xsrf = /(?:^|;\s*)_xsrf=([^;]+)/.exec(document.cookie)?.[1] ?? '';
        const r = await fetch(url, {
          method: 'PUT',
          headers: { 'Content-Type': 'application/json', 'X-XSRFToken': decodeURIComponent(xsrf) },
          body: JSON.stringify({ raw })
        });
        return r.status;
      },
      { url: `${labBase}/api/settings/@intertwin/hub:datalake`, raw }
    );
  expect(await save(JSON.stringify({ lifetimeChoices: [2, 5] }))).toBe(204);
  try {
    await page.reload();
    await expect(page.locator('#jp-main-dock-panel')).toBeVisible({ timeout: 120_000 });
    const panel = page.locator('#intertwin-datalake');
    await showSidebarPanel(page, 'intertwin-datalake');
    await expect(panel.getByTestId('itw-dl-who')).toContainText('alice', { timeout: 120_000 });
    // the first test's rule: its "New lifetime" offers the configured choices (and the default)
    await panel.getByTestId('itw-dl-tab-replicas').click();
    const rule = panel.locator('[data-testid="itw-dl-rule"]', { hasText: `intertwin:${DATASET}` });
    const options = rule.getByLabel('New lifetime').locator('option');
    await expect(options.filter({ hasText: '2 days' })).toHaveCount(1, { timeout: 30_000 });
    await expect(options.filter({ hasText: '5 days' })).toHaveCount(1);
    await expect(options.filter({ hasText: '14 days' })).toHaveCount(0);
  } finally {
    expect(await save('{}')).toBe(204);
  }
});
