import { expect, Page } from '@playwright/test';

/*
 * What the specs share to reach a testbed hub, set by the runner (tests/testbed/browser.py):
 * HUB_URL (Playwright's baseURL), HUB_LOGIN (`checkin`: the hub logs in through the testbed's
 * Keycloak, as the real hub does through EGI Check-in; `form`: the demo's password form) and
 * HUB_PASSWORD (the users' password at either).
 */

/** The users' password (the testbed prints it; the runner passes it in HUB_PASSWORD). */
export const password = process.env.HUB_PASSWORD ?? 'intertwin-demo';

/** How the hub under test logs users in. */
export const loginKind = process.env.HUB_LOGIN === 'checkin' ? 'checkin' : 'form';

/**
 * Sign in to the hub as `user`: through Keycloak's own login page (the hub's "Sign in with EGI
 * Check-in" button, Keycloak's form at the realm egi's URLs, back to the hub), or the demo's form.
 */
export async function login(page: Page, user: string): Promise<void> {
  await page.goto('/hub/login');
  if (loginKind === 'checkin') {
    await page.getByText('Sign in with EGI Check-in').click();
    await expect(page).toHaveURL(/\/auth\/realms\/egi\/protocol\/openid-connect\/auth/);
    await page.fill('#username', user);
    await page.fill('#password', password);
    await page.click('#kc-login');
  } else {
    await page.fill('#username_input', user);
    await page.fill('#password_input', password);
    await page.click('#login_submit');
  }
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

/** What to start when the named server is not running yet. */
export interface ISessionChoice {
  /** The site's profile slug in the spawn form (`ukri`, `vega`, ...). */
  profile: string;
  /** The GPU choice of the profile's GPU select (`gpu-2`), if any. */
  gpus?: string;
}

/**
 * Log in as `user` and open JupyterLab in their named server `server`, starting it from the spawn
 * form with `choice` unless it already runs.
 */
export async function openLab(
  page: Page,
  user: string,
  server: string,
  choice: ISessionChoice
): Promise<void> {
  await login(page, user);
  await page.goto(`/hub/spawn/${user}/${server}`);
  if (!new RegExp(`/user/${user}/${server}/`).test(page.url())) {
    const form = page.locator('#spawn_form');
    await form.locator(`input[name="profile"][value="${choice.profile}"]`).check();
    if (choice.gpus) {
      await form
        .locator(`select[name="profile-option-${choice.profile}--gpus"]`)
        .selectOption(choice.gpus);
    }
    await form.getByRole('button', { name: 'Start' }).click();
  }
  await page.waitForURL(new RegExp(`/user/${user}/${server}/lab`), { timeout: 180_000 });
  await expect(page.locator('#jp-main-dock-panel')).toBeVisible({ timeout: 120_000 });
}
