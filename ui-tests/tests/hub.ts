import { Page } from '@playwright/test';

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
