// Damaged attachments on the thread page (tests/e2e/attachment_damage.rs):
// each attachment line's integrity mark, its words and colour, in Japanese
// and English, and what the page's download link answers for a damaged one.
//
//   node attachment_damage.cjs '{"base":…,"id":…,"password":…,"thread":…,"download":…}'
//
// Prints one JSON object last (browser.cjs `run`).
'use strict';
const { launch, signIn, screenshots, run, download } = require('./browser.cjs');

const cfg = JSON.parse(process.argv[2]);

/// Each attachment line: file name, integrity state, shown words, colour.
function lines(page) {
  return page.$$eval('ul.attachments li', (lis) => lis.map((li) => {
    const mark = li.querySelector('.integrity');
    return {
      name: li.querySelector('a.attachment-link').textContent.trim(),
      state: mark ? mark.dataset.integrity : null,
      text: mark ? mark.textContent.trim() : null,
      color: mark ? getComputedStyle(mark).color : null,
    };
  }));
}

run(async (out) => {
  const { page, errors, close } = await launch();
  try {
    await signIn(page, cfg.base, cfg.id, cfg.password);
    await page.goto(`${cfg.base}/threads/${cfg.thread}?lang=ja`);
    out.ja = await lines(page);
    out.screenshots = await screenshots(page, 'attachment-damaged');
    await page.goto(`${cfg.base}/threads/${cfg.thread}?lang=en`);
    out.en = await lines(page);
    await page.goto(`${cfg.base}/threads/${cfg.thread}?lang=ja`);
    out.download_status = (await download(page, cfg.download)).status;
    out.errors = errors;
  } finally {
    await close();
  }
});
