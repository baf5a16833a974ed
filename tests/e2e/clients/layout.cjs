// What a person checks of a page's layout, at a desk (1280 px) and on a phone
// (390 px), in Japanese and English: whether the page scrolls sideways, and
// how many lines chosen texts take (a Japanese word broken one character per
// line shows as as many lines as characters).
'use strict';

const WIDTHS = [1280, 390];
const LANGS = ['ja', 'en'];

/// Runs `check(page, width, lang)` on the current page at each width and
/// language; returns { "1280-ja": { side_scroll, ...check }, … } and leaves
/// the page in Japanese at 1280 px.
async function atWidths(page, check) {
  const url = new URL(page.url());
  const out = {};
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 900 });
    for (const lang of LANGS) {
      url.searchParams.set('lang', lang);
      await page.goto(url.toString());
      const side = await page.evaluate(() => ({
        scroll_width: document.scrollingElement.scrollWidth,
        inner_width: window.innerWidth,
      }));
      out[`${width}-${lang}`] = {
        side_scroll: side.scroll_width > side.inner_width,
        scroll_width: side.scroll_width,
        ...(check ? await check(page, width, lang) : {}),
      };
    }
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  url.searchParams.set('lang', 'ja');
  await page.goto(url.toString());
  return out;
}

/// How many lines each element matching `selector` takes (distinct line
/// tops of its text), keyed by its text.
async function lineCounts(page, selector) {
  return page.$$eval(selector, (els) => els.map((el) => {
    const range = document.createRange();
    range.selectNodeContents(el);
    const tops = new Set([...range.getClientRects()]
      .filter((r) => r.width > 0 && r.height > 0)
      .map((r) => Math.round(r.top)));
    return [el.textContent.trim(), tops.size];
  }));
}

module.exports = { atWidths, lineCounts };
