// Security keys in a real browser: headless Chromium (Debian's /usr/bin/chromium)
// driven by playwright-core, with the Chrome DevTools Protocol's virtual
// authenticator standing in for the key. Prints one JSON object.
//
// usage: node webauthn.cjs BASE_URL ACCOUNT_ID PASSWORD
// playwright-core is found through NODE_PATH (scripts/test-all installs it).
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [base, id, password] = process.argv.slice(2);
const out = {};

async function main() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'renkei-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.RENKEI_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    ignoreHTTPSErrors: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(20000);
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'usb',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });

    // Password only: this account has no factor yet and the rule is optional.
    await page.goto(base + '/login');
    await page.fill('input[name=id]', id);
    await page.fill('input[name=password]', password);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    out.after_password = new URL(page.url()).pathname;
    if (out.after_password !== '/') {
      out.page = (await page.content()).slice(0, 1500);
      out.cookies = (await context.cookies()).map((c) => c.name);
    }

    // Register a key on /security.
    await page.goto(base + '/security');
    await page.fill('input[name=key_name]', '診察室のキー');
    await page.click('#webauthn-add');
    await page.waitForSelector('#webauthn-codes li, #webauthn-error:not([hidden])');
    out.register_error = await page.$eval('#webauthn-error', (e) => (e.hidden ? null : e.textContent));
    out.recovery_codes = await page.$$eval('#webauthn-codes li', (l) => l.length);
    const creds = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    out.credentials_in_authenticator = creds.credentials.length;
    await page.goto(base + '/security');
    out.keys_listed = await page.$$eval('#security-keys .key-name', (l) => l.map((e) => e.textContent));

    // Sign out, sign in again: now the key is asked for after the password.
    await Promise.all([page.waitForNavigation(), page.click('#logout')]);
    await page.goto(base + '/login');
    await page.fill('input[name=id]', id);
    await page.fill('input[name=password]', password);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    out.second_step_page = await page.isVisible('#second-factor-form');
    const cookies = await context.cookies();
    out.session_cookie_before_key = cookies.some((c) => c.name === '__Host-renkei-session' && c.value);
    await Promise.all([page.waitForNavigation(), page.click('#webauthn-sign-in')]);
    out.after_key = new URL(page.url()).pathname;
    const me = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
    out.me_status = me;

    // Remove the key.
    await page.goto(base + '/security');
    await Promise.all([page.waitForNavigation(), page.click('button[data-key]')]);
    // The last factor gone, a new password is asked for first.
    out.after_remove = new URL(page.url()).pathname;
    out.remove_error = await page.$eval('#webauthn-error', (e) => (e.hidden ? null : e.textContent)).catch(() => null);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(
  () => console.log(JSON.stringify(out)),
  (e) => { out.error = String(e && e.stack || e); console.log(JSON.stringify(out)); process.exitCode = 1; },
);
