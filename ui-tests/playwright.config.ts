import { defineConfig } from '@playwright/test';

// The hub under test is the local testbed's, started by the pytest session that runs us
// (tests/testbed/test_ui.py) and passed in HUB_URL. Chromium is Debian's: test tools may not
// download browsers here.
export default defineConfig({
  testDir: './tests',
  timeout: 240_000,
  retries: 0,
  workers: 1,
  reporter: [['list']],
  outputDir: process.env.UI_OUTPUT_DIR ?? 'test-results',
  use: {
    baseURL: process.env.HUB_URL,
    // a click or fill on an element that never comes fails naming its locator, instead of
    // waiting silently until the test's whole budget is spent
    actionTimeout: 120_000,
    viewport: { width: 1280, height: 860 },
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync'
      ]
    },
    screenshot: 'only-on-failure',
    trace: 'off'
  }
});
