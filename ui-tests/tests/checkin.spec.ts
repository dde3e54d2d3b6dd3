import { expect, test } from '@playwright/test';

import { password } from './hub';

/*
 * The hub's login through the testbed's Keycloak (EGI Check-in's software, realm egi), in the
 * browser: the hub's login page, Keycloak's own login form, back to the hub. Run by
 * tests/testbed/test_login.py, which starts that Keycloak and hub and sets CHECKIN_UI=1.
 */
test.skip(!process.env.CHECKIN_UI, 'run by tests/testbed/test_login.py (CHECKIN_UI=1)');

const shots = process.env.SCREENSHOT_DIR;

test('alice signs in with EGI Check-in (Keycloak) and is offered her VO sites', async ({
  page
}) => {
  await page.goto('/hub/home');
  // not logged in: the hub's login page offers Check-in
  await expect(page).toHaveURL(/\/hub\/login/);
  await page.getByText('Sign in with EGI Check-in').click();

  // Keycloak's own login form, at the realm egi's /auth URLs as on aai.egi.eu
  await expect(page).toHaveURL(/\/auth\/realms\/egi\/protocol\/openid-connect\/auth/);
  await page.fill('#username', 'alice');
  await page.fill('#password', password);
  if (shots) {
    await page.screenshot({ path: `${shots}/checkin-login.png` });
  }
  await page.click('#kc-login');

  await expect(page).toHaveURL(/\/hub\/home/);
  await page.goto('/hub/spawn/alice/checkin');
  const form = page.locator('#spawn_form');
  await expect(form.getByText('Offload to Vega HPC - dev VO', { exact: true })).toBeVisible();
});
