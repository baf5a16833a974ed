// Shared by the browser tests: headless Chromium (Debian's /usr/bin/chromium)
// driven by playwright-core, signing in through the pages, screenshots in both
// languages. Each test script requires this and prints one JSON object last.
'use strict';
const { chromium } = require('playwright-core');
const fs = require('fs');
const os = require('os');
const path = require('path');

/// A fresh browser profile (its own cookies) with one page.
async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'renkei-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.RENKEI_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(20000);
  // Any script error on a page fails the test that reads `errors`.
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('dialog', (d) => { errors.push('dialog: ' + d.message()); d.dismiss().catch(() => {}); });
  // The profile goes with the browser: a test run leaves nothing in /tmp.
  const close = async () => {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { context, page, errors, close };
}

/// Signs in through the login page; returns the path the browser lands on.
async function signIn(page, base, id, password) {
  await page.goto(base + '/login');
  await page.fill('input[name=id]', id);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('form[action="/login"] button[type=submit]')]);
  return new URL(page.url()).pathname;
}

async function signOut(page) {
  await Promise.all([page.waitForNavigation(), page.click('#logout')]);
}

/// Saves the current page as NAME-ja.png and NAME-en.png under the artefact
/// folder (RENKEI_SCREENSHOTS, default ./artifacts/screenshots), switching the
/// language with the switch every page has, and back to Japanese. `prepare`,
/// if given, runs as `prepare(lang)` on each freshly loaded page before its
/// shot (e.g. to pick files, which a reload forgets).
async function screenshots(page, name, prepare) {
  const dir = process.env.RENKEI_SCREENSHOTS || path.join(process.cwd(), 'artifacts', 'screenshots');
  fs.mkdirSync(dir, { recursive: true });
  const url = new URL(page.url());
  const saved = [];
  for (const lang of ['ja', 'en']) {
    url.searchParams.set('lang', lang);
    await page.goto(url.toString());
    if (prepare) await prepare(lang);
    const file = path.join(dir, `${name}-${lang}.png`);
    await page.screenshot({ path: file, fullPage: true });
    saved.push(path.basename(file));
  }
  url.searchParams.set('lang', 'ja');
  await page.goto(url.toString());
  return saved;
}

/// Runs `body(out)` and prints `out` as the last line, with `error` set on a throw.
async function run(body) {
  const out = {};
  try {
    await body(out);
  } catch (e) {
    out.error = String(e && e.stack || e);
  }
  process.stdout.write('\n' + JSON.stringify(out) + '\n');
}

/// Fetches `href` in the page as its download link would (the session's
/// cookie), and hashes the bytes there: status, Content-Disposition, the
/// server's x-renkei-sha256 header, SHA-256.
async function download(page, href) {
  return page.evaluate(async (href) => {
    const r = await fetch(href);
    const bytes = await r.arrayBuffer();
    const digest = await crypto.subtle.digest('SHA-256', bytes);
    return {
      status: r.status,
      disposition: r.headers.get('content-disposition'),
      header_sha256: r.headers.get('x-renkei-sha256'),
      sha256: [...new Uint8Array(digest)].map((x) => x.toString(16).padStart(2, '0')).join(''),
    };
  }, href);
}

module.exports = { launch, signIn, signOut, screenshots, run, download };
