import { expect, test } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

/*
 * Benchmark (bench/lab_load.py runs it with LAB_LOAD_BENCH=1, LAB_URL and LAB_CONFIG_DIR):
 * JupyterLab's ready time with and without the @intertwin/hub extension, on one server.
 * JupyterLab reads labconfig/page_config.json on every page request, so writing or removing
 * `disabledExtensions` there switches the extension off or on between two loads of the same
 * server. Loads alternate (on, off, off, on, ...) in fresh browser contexts (empty HTTP cache).
 */
test.skip(!process.env.LAB_LOAD_BENCH, 'run by bench/lab_load.py (LAB_LOAD_BENCH=1)');

const EXT = '@intertwin/hub';

function setExtension(configDir: string, enabled: boolean): void {
  const dir = path.join(configDir, 'labconfig');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'page_config.json');
  fs.writeFileSync(file, JSON.stringify({ disabledExtensions: { [EXT]: !enabled } }));
}

test('JupyterLab ready time with and without the interTwin extension', async ({ browser }) => {
  const rounds = Number(process.env.LAB_LOAD_ROUNDS ?? '10');
  test.setTimeout(120_000 + rounds * 2 * 60_000);
  const url = process.env.LAB_URL!;
  const configDir = process.env.LAB_CONFIG_DIR!;
  const times: { on: number[]; off: number[] } = { on: [], off: [] };
  const load = async (enabled: boolean): Promise<number> => {
    setExtension(configDir, enabled);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url);
    // ready: the shell is laid out and the splash screen is gone (JupyterLab removes it once
    // every plugin has activated and the layout is restored)
    const ms = await page.waitForFunction(
      () =>
        document.querySelector('#jp-main-dock-panel') !== null &&
        document.querySelector('#jupyterlab-splash') === null
          ? performance.now()
          : null,
      undefined,
      { polling: 'raf', timeout: 60_000 }
    );
    const readyMs = (await ms.jsonValue()) as number;
    // the right variant was measured: our sidebar tabs are there exactly when enabled
    await expect(page.locator('li[data-id="intertwin-datalake"]')).toHaveCount(enabled ? 1 : 0);
    await context.close();
    return readyMs;
  };
  await load(true); // warm the server's caches (static files, settings) for both variants
  await load(false);
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? [true, false] : [false, true];
    for (const on of order) {
      (on ? times.on : times.off).push(await load(on));
    }
  }
  setExtension(configDir, true);
  console.log(`LAB_LOAD ${JSON.stringify(times)}`);
  if (process.env.BENCH_OUTPUT) {
    fs.writeFileSync(process.env.BENCH_OUTPUT, JSON.stringify(times));
  }
});
