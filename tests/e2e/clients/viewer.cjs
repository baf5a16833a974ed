// The DICOM viewer in headless Chromium (tests/e2e/viewer.rs, and the
// first-slice figure of bench/dicom).
//
//   node viewer.cjs '{"base":…,"id":…,"password":…,"item":…,"series":{…},"out":DIR}'
//     test mode: opens the thread, then the viewer; times the first slice;
//     changes the preset; scrolls with the wheel and the keys; writes the grey
//     levels of the displayed slice (read back from the <img> through a
//     canvas) to DIR/slice.gray for the Rust side to compare with pydicom;
//     walks a multi-frame, a colour and an undecodable file; screenshots.
//   node viewer.cjs '{"mode":"bench","base":…,"id":…,"password":…,"item":…,"repeat":5}'
//     bench mode: thread → viewer link → first slice drawn, REPEAT times
//     (timed from opening the thread and from the click on the link).
//
// Prints one JSON object last (browser.cjs `run`).
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { launch, signIn, screenshots, run } = require('./browser.cjs');

const cfg = JSON.parse(process.argv[2]);

/// What the viewport shows (runs in the page).
function readViewport() {
  const v = document.getElementById('viewport');
  if (!v) return null;
  const err = document.getElementById('slice-error');
  const img = document.getElementById('view-img');
  return {
    shown: v.dataset.shown === undefined ? null : Number(v.dataset.shown),
    position: Number(v.dataset.position),
    attachment: v.dataset.attachment === undefined ? null : Number(v.dataset.attachment),
    frame: v.dataset.frame === undefined ? null : Number(v.dataset.frame),
    state: v.dataset.state || null,
    window: v.dataset.window || null,
    shownUrl: v.dataset.shownUrl || '',
    pos: document.getElementById('slice-pos').textContent.trim(),
    instance: document.getElementById('slice-instance').textContent.trim(),
    error: err.hidden ? null : err.textContent.trim(),
    download: document.getElementById('slice-download').getAttribute('href'),
    naturalWidth: img.hidden ? 0 : img.naturalWidth,
  };
}

/// The viewport's state once `cond(state)` holds, polled from here (the
/// page's CSP forbids the eval that a string predicate in the page needs).
async function viewportWhen(page, cond, what) {
  const deadline = Date.now() + 20000;
  let last = null;
  while (Date.now() < deadline) {
    last = await page.evaluate(readViewport);
    if (last && cond(last)) return last;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`waiting for ${what}; the viewport shows ${JSON.stringify(last)}`);
}

/// Samples of the displayed <img>, drawn onto a canvas: [width, height, RGBA…].
async function displayedPixels(page) {
  return page.evaluate(() => {
    const img = document.getElementById('view-img');
    const c = document.createElement('canvas');
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const ctx = c.getContext('2d', { colorSpace: 'srgb' });
    ctx.drawImage(img, 0, 0);
    return { width: c.width, height: c.height, rgba: Array.from(ctx.getImageData(0, 0, c.width, c.height).data) };
  });
}

async function openViewerFromThread(page, base, item) {
  const tThread = Date.now();
  await page.goto(`${base}/items/${item}`);
  const link = page.locator(`a.viewer-link[href="/items/${item}/viewer"]`);
  await link.waitFor();
  const t0 = Date.now();
  await Promise.all([page.waitForNavigation(), link.click()]);
  const first = await viewportWhen(page, (s) => s.shown === 0 && (s.naturalWidth > 0 || s.state === 'error'), 'the first slice');
  const done = Date.now();
  const inPage = await page.evaluate(() => Number(document.getElementById('viewport').dataset.firstSliceMs));
  return { first, wall: done - t0, fromThread: done - tThread, inPage };
}

async function bench(out) {
  const { page, errors, close } = await launch();
  try {
    await signIn(page, cfg.base, cfg.id, cfg.password);
    out.runs = [];
    for (let i = 0; i < (cfg.repeat || 5); i++) {
      const r = await openViewerFromThread(page, cfg.base, cfg.item);
      if (r.first.state !== 'image') throw new Error(`first slice not shown: ${JSON.stringify(r.first)}`);
      out.runs.push({
        thread_to_first_slice_ms: r.fromThread,
        click_to_first_slice_ms: r.wall,
        navigation_to_first_slice_ms: r.inPage,
      });
      out.slices = Number(r.first.pos.split('/')[1]);
    }
    out.errors = errors;
  } finally {
    await close();
  }
}

async function test(out) {
  const { base, item, series } = cfg;
  const { page, errors, close } = await launch();
  try {
    out.landed = await signIn(page, base, cfg.id, cfg.password);

    // Thread → viewer, first slice timed.
    const opened = await openViewerFromThread(page, base, item);
    out.first_slice_ms = opened.wall;
    out.first_slice_page_ms = opened.inPage;
    out.first = opened.first;
    out.title = await page.title();
    out.url = page.url();
    out.heading = await page.locator('h1').innerText();
    out.series_list = await page.locator('.series-link').evaluateAll((as) => as.map((a) => ({
      series: Number(a.dataset.series),
      text: a.innerText.replace(/\s+/g, ' ').trim(),
      current: a.getAttribute('aria-current') === 'true',
    })));
    out.study_dates = await page.locator('.study-date').allInnerTexts();
    out.presets = await page.locator('#preset option').evaluateAll((os) => os.map((o) => [o.value, o.textContent]));

    // The CT series is the selected one (the first); the lung preset.
    const ctLink = page.locator(`.series-link[data-series="${series.ct}"]`);
    if (await ctLink.getAttribute('aria-current') !== 'true') {
      await ctLink.click();
      await viewportWhen(page, (s) => s.shown === 0 && s.naturalWidth > 0, 'the CT series');
    }
    await page.selectOption('#preset', 'lung');
    out.after_preset = await viewportWhen(page, (s) => s.window === '-600 1500' && s.shown === 0 && s.shownUrl.includes('preset=lung'), 'the lung window');
    out.window_inputs = [await page.inputValue('#center'), await page.inputValue('#width')];

    // Prefetch: with the first slice shown, the next ones are asked for before any scroll.
    const renders = () => page.evaluate(() => performance.getEntriesByType('resource')
      .filter((e) => e.name.includes('/render?') && e.name.includes('preset=lung'))
      .map((e) => new URL(e.name).pathname.split('/')[6]));
    for (let waited = 0; waited < 5000 && (await renders()).length < 7; waited += 20) {
      await new Promise((r) => setTimeout(r, 20));
    }
    out.prefetched = await renders();

    // The wheel: three notches down, one up.
    await page.hover('#viewport');
    const steps = [];
    for (const [dy, want] of [[100, 1], [100, 2], [100, 3], [-100, 2]]) {
      const t = Date.now();
      await page.mouse.wheel(0, dy);
      const s = await viewportWhen(page, (s) => s.shown === want && s.naturalWidth > 0, `wheel to ${want}`);
      steps.push({ input: `wheel ${dy}`, shown: s.shown, attachment: s.attachment, instance: s.instance, pos: s.pos, ms: Date.now() - t });
    }
    // The keys: ↓ ↓ ↑, PageDown, End, Home, and ↓ ×5 to the slice compared below.
    await page.focus('#viewport');
    const keys = [['ArrowDown', 3], ['ArrowDown', 4], ['ArrowUp', 3], ['PageDown', 3 + series.ct_page], ['End', series.ct_count - 1], ['Home', 0]];
    for (const [key, want] of keys) {
      const t = Date.now();
      await page.keyboard.press(key);
      const s = await viewportWhen(page, (s) => s.shown === want && s.naturalWidth > 0, `${key} to ${want}`);
      steps.push({ input: key, shown: s.shown, attachment: s.attachment, instance: s.instance, pos: s.pos, ms: Date.now() - t });
    }
    for (let i = 1; i <= series.compare_at; i++) {
      await page.keyboard.press('ArrowDown');
      await viewportWhen(page, (s) => s.shown === i && s.naturalWidth > 0, `ArrowDown to ${i}`);
    }
    out.steps = steps;
    const compared = await viewportWhen(page, (s) => s.naturalWidth > 0, 'the compared slice');
    out.compared = compared;
    const px = await displayedPixels(page);
    out.compared_size = [px.width, px.height];
    const gray = Buffer.alloc(px.width * px.height);
    let notGray = 0;
    for (let i = 0; i < gray.length; i++) {
      const [r, g, b] = px.rgba.slice(i * 4, i * 4 + 3);
      if (r !== g || g !== b) notGray++;
      gray[i] = r;
    }
    out.compared_not_gray = notGray;
    fs.writeFileSync(path.join(cfg.out, 'slice.gray'), gray);
    // The same render URL fetched from the page: the bytes the <img> holds.
    out.compared_fetch = await page.evaluate(async (u) => {
      const r = await fetch(u);
      return { status: r.status, type: r.headers.get('content-type'), window: r.headers.get('x-renkei-window'), frames: r.headers.get('x-renkei-frames') };
    }, compared.shownUrl);

    // A multi-frame file: its frames are the series' positions.
    await page.click(`.series-link[data-series="${series.multiframe}"]`);
    out.multiframe_first = await viewportWhen(page, (s) => s.shown === 0 && s.frame === 0 && s.naturalWidth > 0 && s.shownUrl.includes('frame=0'), 'the multi-frame file');
    await page.focus('#viewport');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    out.multiframe = await viewportWhen(page, (s) => s.shown === 2 && s.naturalWidth > 0, 'frame 3');
    const mf = await displayedPixels(page);
    out.multiframe_size = [mf.width, mf.height];
    fs.writeFileSync(path.join(cfg.out, 'frame.gray'), Buffer.from(mf.rgba.filter((_, i) => i % 4 === 0)));

    // A colour file (two frames): the red band of the test pattern, then its second frame.
    await page.click(`.series-link[data-series="${series.colour}"]`);
    out.colour_first = await viewportWhen(page, (s) => s.shown === 0 && s.frame === 0 && s.naturalWidth > 0 && s.shownUrl.includes('frame=0'), 'the colour file');
    const rgb = await displayedPixels(page);
    const at = (x, y) => rgb.rgba.slice((y * rgb.width + x) * 4, (y * rgb.width + x) * 4 + 3);
    out.colour_size = [rgb.width, rgb.height];
    out.colour_pixel = at(50, 2);
    await page.keyboard.press('End');
    out.colour_last = await viewportWhen(page, (s) => s.shown === 1 && s.frame === 1 && s.naturalWidth > 0, 'the second colour frame');

    // A file that cannot be decoded: the route's message, and its download works.
    await page.click(`.series-link[data-series="${series.broken}"]`);
    out.broken = await viewportWhen(page, (s) => s.shown === 0 && s.state === 'error', 'the undecodable file');
    const dl = await page.request.get(new URL(out.broken.download, base).toString());
    const body = await dl.body();
    out.broken_download = {
      status: dl.status(),
      disposition: dl.headers()['content-disposition'] || '',
      bytes: body.length,
      sha256: crypto.createHash('sha256').update(body).digest('hex'),
    };

    // Screenshots of the CT series with the lung window, both languages.
    await page.goto(`${base}/items/${item}/viewer?series=${series.ct}&preset=lung`);
    await viewportWhen(page, (s) => s.shown === 0 && s.naturalWidth > 0, 'the CT series again');
    out.screenshots = await screenshots(page, 'viewer');
    // English.
    await page.goto(`${base}/items/${item}/viewer?series=${series.broken}&lang=en`);
    out.en = {
      title: await page.title(),
      heading: await page.locator('h1').innerText(),
      presets: await page.locator('#preset option').evaluateAll((os) => os.map((o) => o.textContent)),
      broken: await viewportWhen(page, (s) => s.shown === 0 && s.state === 'error', 'the undecodable file in English'),
    };
    await page.goto(`${base}/items/${item}/viewer?lang=ja`);
    out.errors = errors;
  } finally {
    await close();
  }
}

run(cfg.mode === 'bench' ? bench : test);
