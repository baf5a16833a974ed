// Every page each role can reach, walked in headless Chromium: from the home
// page, every menu entry and every link on a page, but only the first link of
// each kind (so the first item of each list, not all of them), to a depth of
// three. Each page found is then shown at 1280 and 390 px, in Japanese and in
// English, and checked: it does not scroll sideways at 390 px, no script or
// console error, no link answering 4xx, and no English word on a Japanese page
// outside names and abbreviations (ALLOWED). Every failure goes into one list
// (`failures`); a screenshot of each view goes to the folder given.
//
// Usage: node pages_walk.cjs BASE SHOT_DIR ROLES_JSON
//   ROLES_JSON: [{ "role": "doctor", "id": "...", "password": "..." }, ...]
// Prints { pages: { role: [paths] }, failures: [...], shots: N }.
'use strict';
const fs = require('fs');
const path = require('path');
const { launch, signIn, run } = require('./browser.cjs');

const [base, shotDir, rolesJson] = process.argv.slice(2);
const roles = JSON.parse(rolesJson);
const WIDTHS = [1280, 390];
const LANGS = ['ja', 'en'];
const MAX_PAGES = 40;
const MAX_DEPTH = 3;

/// Latin words a Japanese page may show: abbreviations people use in
/// Japanese, the product's name, the language switch, and the names in the
/// test's DICOM files (which the viewer shows in their Latin form too).
const ALLOWED = new Set([
  'CT', 'MRI', 'MR', 'CR', 'US', 'MG', 'NM', 'PET', 'DXA', 'DICOM', 'PDF', 'IMAP', 'ID', 'ZIP',
  'JPEG', 'PNG', 'QR', 'TLS', 'SSL', 'STARTTLS', 'SHA', 'WL', 'WW', 'PC', 'URL', 'HTTPS',
  'Renkei', 'English', 'OK', 'NTP', 'CSV', 'CIDR', 'KB', 'MB', 'GB', 'TB',
  // Clinical scales the care-pathway forms ask for.
  'NIHSS', 'mRS', 'ADL', 'FIM',
]);

/// Paths never followed: they sign out, download, or are the API.
function followable(u) {
  if (u.origin !== new URL(base).origin) return false;
  const p = u.pathname;
  if (p === '/logout' || p.startsWith('/api/') || p.startsWith('/static/')) return false;
  if (/\/attachments\/|\/zip$|\/export|\.(png|pdf|csv|zip)$/.test(p)) return false;
  return true;
}

/// A link's kind: its path with IDs and numbers as `:id`, and its query's
/// keys and values (IDs as `:id`), without the language.
function kind(u) {
  const id = (s) => s.replace(/[0-9a-f]{12,}|\d{4,}(-\d+)*/gi, ':id');
  const q = [...u.searchParams.entries()]
    .filter(([k]) => k !== 'lang')
    .map(([k, v]) => `${k}=${k === 'page' ? ':n' : id(v)}`)
    .sort()
    .join('&');
  return id(u.pathname) + (q ? '?' + q : '');
}

function withLang(pathAndQuery, lang) {
  const u = new URL(pathAndQuery, base);
  u.searchParams.set('lang', lang);
  return u.toString();
}

/// Latin words in the visible text of the page outside code, file names and
/// IDs, with a little of the text around each.
async function englishWords(page) {
  return page.evaluate((allowed) => {
    const skip = 'code, kbd, .mono, a[download], .attachment-link, .account-id, [translate=no], script, style, noscript';
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    const found = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || el.closest(skip)) continue;
      const style = getComputedStyle(el);
      if (style.display === 'none' || style.visibility === 'hidden' || el.closest('[hidden]')) continue;
      const text = n.textContent;
      // A run of letters that is a word of its own: not part of a file name,
      // an address, an ID or a number (CT0001.dcm, a@b.jp, 1.5T).
      const re = /[A-Za-z][A-Za-z']*/g;
      let m;
      while ((m = re.exec(text))) {
        const before = text[m.index - 1] || ' ';
        const after = text[m.index + m[0].length] || ' ';
        if (/[A-Za-z0-9._\/@:\-]/.test(before) || /[0-9._\/@:\-]/.test(after)) continue;
        if (allowed.includes(m[0]) || m[0].length < 2) continue;
        found.push(`${m[0]} «${text.slice(Math.max(0, m.index - 12), m.index + m[0].length + 12).trim()}»`);
      }
    }
    for (const attr of ['placeholder', 'aria-label', 'title']) {
      for (const el of document.querySelectorAll(`[${attr}]`)) {
        if (el.closest(skip)) continue;
        for (const w of (el.getAttribute(attr).match(/(^|[^A-Za-z0-9._\/@:\-])([A-Za-z][A-Za-z']+)(?![A-Za-z0-9._\/@:\-])/g) || [])) {
          const word = w.replace(/^[^A-Za-z]/, '');
          if (!allowed.includes(word)) found.push(`${word} «${attr}»`);
        }
      }
    }
    return [...new Set(found)];
  }, [...ALLOWED]);
}

/// Elements sticking out to the right of a 390 px window (the first few).
async function overflow(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const scroll = document.documentElement.scrollWidth;
    if (scroll <= width) return null;
    const wide = [];
    for (const el of document.querySelectorAll('body *')) {
      const r = el.getBoundingClientRect();
      if (r.right > width + 1 && r.width > 0) {
        const inner = [...el.children].some((c) => c.getBoundingClientRect().right > width + 1);
        if (!inner) wide.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : ''}`);
      }
      if (wide.length >= 4) break;
    }
    return { scroll_width: scroll, width, widest: wide };
  });
}

/// Japanese broken mid-word: a cell, link or label one character wide
/// (こ/と/ひ/ら…), or a short label (a menu entry, a button, a column head,
/// a tab) spread over two lines (新規作 / 成).
async function brokenWords(page) {
  return page.evaluate(() => {
    const ja = /[\u3040-\u30ff\u4e00-\u9fff]/;
    const out = [];
    const lineOf = (el) => {
      const cs = getComputedStyle(el);
      const fs = parseFloat(cs.fontSize);
      const lh = cs.lineHeight === 'normal' ? 1.5 * fs : parseFloat(cs.lineHeight);
      return { fs, lh };
    };
    for (const el of document.querySelectorAll('td, th, a, button, label, dd, dt, li, span')) {
      const t = (el.innerText || '').trim();
      if (t.length < 2 || !ja.test(t)) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0) continue;
      const { fs } = lineOf(el);
      if (r.width < 2.2 * fs && r.height > 2.5 * fs) out.push(`one character per line: ${el.tagName.toLowerCase()} «${t.replace(/\s+/g, '').slice(0, 16)}»`);
      if (out.length >= 6) return out;
    }
    for (const el of document.querySelectorAll('nav a, button, th, .tabs a, .subnav a, .button')) {
      const t = (el.innerText || '').trim();
      if (!t || /\s/.test(t) || t.length > 10 || !ja.test(t)) continue;
      const r = el.getBoundingClientRect();
      if (r.width === 0) continue;
      const cs = getComputedStyle(el);
      const { lh } = lineOf(el);
      const pad = parseFloat(cs.paddingTop) + parseFloat(cs.paddingBottom) + parseFloat(cs.borderTopWidth) + parseFloat(cs.borderBottomWidth);
      if (r.height - pad > 1.8 * lh) out.push(`label on two lines: ${el.tagName.toLowerCase()} «${t}»`);
      if (out.length >= 6) return out;
    }
    return out;
  });
}

/// Finds the role's pages: breadth first from the home page, one link of each kind.
async function discover(page, failures, role) {
  const seen = new Set();
  const pages = [];
  const queue = [{ url: '/', from: '(start)', depth: 0 }];
  seen.add(kind(new URL('/', base)));
  while (queue.length && pages.length < MAX_PAGES) {
    const { url, from, depth } = queue.shift();
    const res = await page.goto(withLang(url, 'ja'));
    const status = res ? res.status() : 0;
    if (status >= 400) {
      failures.push({ role, check: 'link answers 4xx', page: url, from, detail: `HTTP ${status}` });
      continue;
    }
    const here = new URL(page.url());
    here.searchParams.delete('lang');
    const landed = here.pathname + here.search;
    if (!pages.includes(landed)) pages.push(landed);
    if (depth >= MAX_DEPTH) continue;
    const links = await page.$$eval('a[href]', (as) => as.filter((a) => !a.hasAttribute('download')).map((a) => a.href));
    for (const href of links) {
      let u;
      try { u = new URL(href); } catch { continue; }
      if (!followable(u)) continue;
      const k = kind(u);
      if (seen.has(k)) continue;
      seen.add(k);
      u.searchParams.delete('lang');
      queue.push({ url: u.pathname + u.search, from: landed, depth: depth + 1 });
    }
  }
  return pages;
}

function slug(p) {
  return p.replace(/^\//, '').replace(/[^A-Za-z0-9]+/g, '_').replace(/[0-9a-f]{12,}/g, 'id').slice(0, 60) || 'home';
}

run(async (out) => {
  fs.mkdirSync(shotDir, { recursive: true });
  out.pages = {};
  out.failures = [];
  out.shots = 0;
  for (const who of roles) {
    const b = await launch();
    const consoleErrors = [];
    b.page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    // Every response of a navigation or a resource the page loads.
    const bad = [];
    b.page.on('response', (r) => { if (r.status() >= 400) bad.push(`${r.status()} ${new URL(r.url()).pathname}`); });
    try {
      await signIn(b.page, base, who.id, who.password);
      const pages = await discover(b.page, out.failures, who.role);
      out.pages[who.role] = pages;
      let n = 0;
      for (const p of pages) {
        n += 1;
        for (const width of WIDTHS) {
          await b.page.setViewportSize({ width, height: 900 });
          for (const lang of LANGS) {
            consoleErrors.length = 0;
            b.errors.length = 0;
            bad.length = 0;
            const res = await b.page.goto(withLang(p, lang));
            await b.page.waitForLoadState('load');
            const at = `${p} (${width}px, ${lang})`;
            if (res && res.status() >= 400) out.failures.push({ role: who.role, check: 'page answers 4xx', page: at, detail: `HTTP ${res.status()}` });
            for (const e of [...consoleErrors, ...b.errors]) out.failures.push({ role: who.role, check: 'console error', page: at, detail: e });
            for (const r of bad) out.failures.push({ role: who.role, check: 'resource answers 4xx', page: at, detail: r });
            if (width === 390) {
              const o = await overflow(b.page);
              if (o) out.failures.push({ role: who.role, check: 'scrolls sideways at 390 px', page: at, detail: `${o.scroll_width}px wide: ${o.widest.join(', ')}` });
            }
            const broken = await brokenWords(b.page);
            if (broken.length) out.failures.push({ role: who.role, check: 'Japanese broken mid-word', page: at, detail: broken.join('; ') });
            if (lang === 'ja') {
              const words = await englishWords(b.page);
              if (words.length) out.failures.push({ role: who.role, check: 'English on a Japanese page', page: at, detail: words.slice(0, 8).join('; ') });
            }
            const file = path.join(shotDir, `${who.role}-${String(n).padStart(2, '0')}-${slug(p)}-${width}-${lang}.png`);
            await b.page.screenshot({ path: file, fullPage: true });
            out.shots += 1;
          }
        }
      }
    } finally {
      await b.close();
    }
  }
});
