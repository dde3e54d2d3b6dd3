import { expect, Page } from '@playwright/test';

/** The demo users' password (the testbed hub prints it; tests pass it in HUB_PASSWORD). */
export const password = process.env.HUB_PASSWORD ?? 'intertwin-demo';

/** Sign in to the hub's login form as `user`. */
export async function login(page: Page, user: string): Promise<void> {
  await page.goto('/hub/login');
  await page.fill('#username_input', user);
  await page.fill('#password_input', password);
  await page.click('#login_submit');
  await page.waitForURL(/\/hub\//);
}

/**
 * Show a left-sidebar panel. The restored layout may bring it back open, at any moment while
 * the lab starts, and a click on the current tab collapses the sidebar: so click only a tab
 * that is not the current one, until the panel shows.
 */
export async function showSidebarPanel(page: Page, id: string): Promise<void> {
  const panel = page.locator(`#${id}`);
  const tab = page.locator(`.jp-SideBar li[data-id="${id}"]`);
  await expect(async () => {
    const current = ((await tab.getAttribute('class')) ?? '').includes('lm-mod-current');
    if (!current && !(await panel.isVisible())) {
      await tab.click();
    }
    await expect(panel).toBeVisible({ timeout: 5_000 });
  }).toPass({ timeout: 120_000 });
}
