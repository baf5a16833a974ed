// What a reader sees of items whose records were changed after signing: for
// each page, every step's verdict code and whether it is shown red, the
// thread's integrity alert, and whether any of the given texts appear.
//
// usage: node place_page.cjs BASE ID PASSWORD PATHS_JSON MARKERS_JSON
'use strict';
const { launch, signIn, screenshots, run } = require('./browser.cjs');

const [base, id, password, pathsJson, markersJson] = process.argv.slice(2);
const paths = JSON.parse(pathsJson);
const markers = JSON.parse(markersJson);

run(async (out) => {
  const { page, errors, close } = await launch();
  out.landed = await signIn(page, base, id, password);
  out.pages = {};
  for (const p of paths) {
    await page.goto(base + p);
    const seen = await page.evaluate((markers) => ({
      steps: [...document.querySelectorAll('article.step')].map((a) => ({
        status: a.dataset.status,
        red: getComputedStyle(a).borderLeftColor === 'rgb(163, 0, 0)',
        verdict: a.querySelector('[data-signature]').dataset.signature,
        text: a.querySelector('.sig').textContent.trim(),
        older: a.querySelectorAll('[data-place=unsigned]').length,
      })),
      alert: (document.querySelector('#integrity-alert') || { textContent: '' }).textContent.trim(),
      shown: markers.filter((m) => document.body.innerText.includes(m)),
      forms: document.querySelectorAll('form.action').length,
    }), markers);
    out.pages[p] = seen;
  }
  await page.goto(base + paths[0]);
  out.screenshots = await screenshots(page, 'place-moved-report');
  out.errors = errors;
  await close();
});
