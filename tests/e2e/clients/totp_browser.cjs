// TOTP in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven
// by playwright-core. Codes come from Python's pyotp (an independent
// implementation), run as Debian's /usr/bin/python3. Prints one JSON object.
//
// usage: node totp_browser.cjs BASE_URL ACCOUNT_ID PASSWORD
'use strict';
const { chromium } = require('playwright-core');
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const [base, id, password] = process.argv.slice(2);
const out = {};

function pyotp(secret) {
  return execFileSync('/usr/bin/python3', ['-c',
    'import sys, pyotp; print(pyotp.TOTP(sys.argv[1]).now())', secret]).toString().trim();
}

// The next 30-second step, so the code is one the server has not seen yet.
async function nextStep() {
  const ms = 30000 - (Date.now() % 30000) + 1500;
  await new Promise((r) => setTimeout(r, ms));
}

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
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(20000);
  const me = () => page.evaluate(async () => (await fetch('/api/v1/me')).status);
  const signIn = async () => {
    await page.goto(base + '/login');
    await page.fill('input[name=id]', id);
    await page.fill('input[name=password]', password);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  };
  const secondStep = async (field, value) => {
    await page.fill(`#second-factor-form input[name=${field}]`, value);
    await Promise.all([page.waitForNavigation(), page.click('#second-factor-form button[type=submit]')]);
    return new URL(page.url()).pathname;
  };
  const signOut = async () => {
    await Promise.all([page.waitForNavigation(), page.click('#logout')]);
  };
  try {
    // Enrol: the page shows the QR code and the secret; a first code confirms.
    await signIn();
    await page.goto(base + '/security');
    out.qr_code_shown = await page.isVisible('.qr svg');
    // Shown in groups of four; an app takes it without the spaces.
    const secret = (await page.textContent('#totp-secret')).replace(/\s+/g, '');
    await page.fill('form[action="/security/totp"] input[name=code]', pyotp(secret));
    await Promise.all([page.waitForNavigation(), page.click('form[action="/security/totp"] button[type=submit]')]);
    const codes = await page.$$eval('#recovery-codes li', (l) => l.map((e) => e.textContent.trim()));
    out.recovery_codes = codes.length;
    await signOut();

    // The password alone: the code is asked for and no session exists yet.
    await signIn();
    out.second_step_page = await page.isVisible('#second-factor-form');
    out.me_before_code = await me();
    await nextStep();
    const code = pyotp(secret);
    out.after_code = await secondStep('code', code);
    out.me_after_code = await me();
    await signOut();

    // The same code again: refused.
    await signIn();
    out.reused_code_path = await secondStep('code', code);
    out.reused_code_error = await page.isVisible('#error');
    out.me_after_reused = await me();

    // A recovery code works once.
    await signIn();
    out.after_recovery = await secondStep('recovery_code', codes[0]);
    out.me_after_recovery = await me();
    await signOut();
    await signIn();
    out.recovery_again_path = await secondStep('recovery_code', codes[0]);
    out.recovery_again_error = await page.isVisible('#error');
    out.me_after_recovery_again = await me();
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(
  () => console.log(JSON.stringify(out)),
  (e) => { out.error = String(e && e.stack || e); console.log(JSON.stringify(out)); process.exitCode = 1; },
);
