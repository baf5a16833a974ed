// The idle timeout in a real browser: the page warns before the server ends
// the session, "stay signed in" keeps it, and left alone the browser ends on
// the expired page.
//
// usage: node idle_timeout.cjs BASE_URL ACCOUNT_ID PASSWORD
'use strict';
const { launch, signIn, run } = require('./browser.cjs');

const [base, id, password] = process.argv.slice(2);

run(async (out) => {
  const b = await launch();
  try {
    const page = b.page;
    out.landed = await signIn(page, base, id, password);
    out.warning_at_first = await page.isVisible('#idle-warning');
    const t0 = Date.now();
    await page.waitForSelector('#idle-warning', { state: 'visible', timeout: 15000 });
    out.warning_after_ms = Date.now() - t0;
    // Staying signed in hides the warning and keeps the session.
    await page.click('#idle-stay');
    await page.waitForSelector('#idle-warning', { state: 'hidden' });
    out.me_after_stay = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
    // Left alone: the warning comes back, then the expired page.
    await page.waitForURL(/\/login\?expired=1/, { timeout: 30000 });
    out.expired_page = await page.textContent('main');
    out.me_after_expiry = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
    out.errors = b.errors;
  } finally {
    await b.close();
  }
});
