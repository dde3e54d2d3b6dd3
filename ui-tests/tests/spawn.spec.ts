import { expect, test } from '@playwright/test';

import { login } from './hub';

const shots = process.env.SCREENSHOT_DIR;

test('the spawn form offers the sites, and Vega with 2 GPUs starts JupyterLab', async ({
  page
}) => {
  // every progress line the hub sends, collected as they arrive: the page replaces the log with
  // JupyterLab as soon as the server is ready, so the test reads the stream, not the page
  const progress: string[] = [];
  await page.exposeFunction('__intertwinProgress', (line: string) => progress.push(line));
  await page.addInitScript(() => {
    const Native = window.EventSource;
    class Recording extends Native {
      constructor(url: string | URL, init?: EventSourceInit) {
        super(url, init);
        this.addEventListener('message', (e: MessageEvent) =>
          (window as any).__intertwinProgress(JSON.parse(e.data).message ?? '')
        );
      }
    }
    window.EventSource = Recording;
  });
  await login(page, 'alice');

  await page.goto('/hub/spawn/alice/ui');
  const form = page.locator('#spawn_form');
  for (const text of [
    'UKRI Cloud',
    'itwinai environment on UKRI Cloud',
    'Offload to Vega HPC - dev VO',
    'Offload Jupyterlab session on a GPU node at Vega supercomputer',
    'Offload to PSNC HPC - dev VO',
    'Offload Jupyterlab session on a node at PSNC supercomputer',
    'Offload to KBFI',
    'Offload Jupyterlab session on a KBFI'
  ]) {
    await expect(form.getByText(text, { exact: true })).toBeVisible();
  }

  await form.locator('input[name="profile"][value="vega"]').check();
  const gpus = form.locator('select[name="profile-option-vega--gpus"]');
  await expect(gpus).toBeVisible();
  await gpus.selectOption('gpu-2');
  if (shots) {
    await page.screenshot({ path: `${shots}/spawn-form.png`, fullPage: true });
  }
  await form.getByRole('button', { name: 'Start' }).click();

  // JupyterLab itself, served from the offloaded pod through the proxy
  await page.waitForURL(/\/user\/alice\/ui\/lab/, { timeout: 240_000 });
  await expect(page.locator('#jp-main-dock-panel')).toBeVisible({ timeout: 120_000 });

  // the progress page spoke the site's language, in the order it happened
  const at = (re: RegExp) => progress.findIndex(line => re.test(line));
  const submitted = at(/^submitted to Vega \(node vega-vk\)$/);
  const queued = at(/^queued at Vega \(batch job \d+\)$/);
  const running = at(/^running on vega-vk$/);
  expect(submitted, progress.join('\n')).toBeGreaterThanOrEqual(0);
  expect(queued, progress.join('\n')).toBeGreaterThan(submitted);
  expect(running, progress.join('\n')).toBeGreaterThan(queued);

  // the interTwin sidebar knows where the session runs (from the spawner, via the server ext.)
  await page.locator('li[data-id="intertwin-site"]').click();
  await expect(page.getByTestId('itw-site-title')).toHaveText('Offload to Vega HPC - dev VO');
  await expect(page.locator('#intertwin-site')).toContainText('VEGA-DCACHE');
  if (shots) {
    await page.waitForTimeout(2000);
    await page.screenshot({ path: `${shots}/lab.png` });
  }
});
