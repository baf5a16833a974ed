// A large study on the thread page and its files page (tests/e2e/files_page.rs):
// the thread shows the DICOM files as one summary line with a link to the
// paged list; the list pages through every attachment, and a file downloaded
// from it hashes to the SHA-256 the page shows.
//
//   node files_page.cjs '{"base":…,"id":…,"password":…,"item":…}'
//
// Prints one JSON object last (browser.cjs `run`).
'use strict';
const { launch, signIn, screenshots, run, download } = require('./browser.cjs');

const cfg = JSON.parse(process.argv[2]);

/// The rows of the files page: name, href, shown SHA-256.
function rows(page) {
  return page.$$eval('table.files tbody tr', (trs) => trs.map((tr) => ({
    name: tr.querySelector('a.attachment-link').textContent.trim(),
    href: tr.querySelector('a.attachment-link').getAttribute('href'),
    sha256: tr.querySelector('td.mono').textContent.trim(),
  })));
}

run(async (out) => {
  const { page, errors, close } = await launch();
  try {
    await signIn(page, cfg.base, cfg.id, cfg.password);
    await page.goto(`${cfg.base}/items/${cfg.item}`);
    out.thread = {
      summary: (await page.locator('.dicom-files-summary').innerText()).trim(),
      links: await page.$$eval('a.attachment-link', (as) => as.map((a) => a.textContent.trim())),
      viewer: await page.locator('a.viewer-link').count(),
      studies: await page.$$eval('.zip-downloads .hint', (hs) => hs.map((h) => h.textContent.trim())),
      files_href: await page.locator('a.files-link').getAttribute('href'),
      html_bytes: (await page.content()).length,
    };
    await Promise.all([page.waitForNavigation(), page.click('a.files-link')]);
    out.first = { range: (await page.locator('#files-range').innerText()).trim(), rows: await rows(page),
      previous: await page.locator('#files-previous').count() };
    await screenshots(page, 'files');
    await Promise.all([page.waitForNavigation(), page.click('#files-next')]);
    const second = await rows(page);
    out.second = { range: (await page.locator('#files-range').innerText()).trim(), rows: second,
      next: await page.locator('#files-next').count(), previous: await page.locator('#files-previous').count() };
    // The last file, fetched as its link would download it, hashed in the page.
    const last = second[second.length - 1];
    out.download = await download(page, last.href);
    await page.goto(`${cfg.base}/items/${cfg.item}?lang=en`);
    out.thread_en = (await page.locator('.dicom-files-summary').innerText()).trim();
    out.errors = errors;
  } finally {
    await close();
  }
});
