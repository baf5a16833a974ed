// The facility-office pages in headless Chromium: the liaison inbox (claim,
// assign, unassign), the facility-progress page of a liaison office and of a
// clerk (read-only, forged posts refused), and a booking moved to another time.
//
// usage: node pages_office.cjs BASE_URL JSON
//   JSON: { liaison: [id, pw], clerk_c: [id, pw], clerk_h: [id, pw], gp: [id, pw],
//           fresh: thread, late: thread, rad: doctor id, month: "YYYY-MM" }
'use strict';
const { launch, signIn, signOut, screenshots, run } = require('./browser.cjs');
const { atWidths, lineCounts } = require('./layout.cjs');

const base = process.argv[2];
const a = JSON.parse(process.argv[3]);

/// Clicks what submits a form and waits for the page that answers.
async function submit(page, selector) {
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

async function inboxRow(page, id) {
  return page.$eval(`#inbox tr[data-thread="${id}"]`, (tr) => {
    const text = (sel) => (tr.querySelector(sel) || { textContent: '' }).textContent.trim();
    const due = tr.querySelector('.due').childNodes[0];
    const assignee = tr.querySelector('.assignee');
    return {
      kind: text('.kind'),
      counterpart: text('.counterpart'),
      state: text('.state'),
      due: due ? due.textContent.trim() : '',
      urgency: text('.urgency'),
      overdue: tr.classList.contains('overdue'),
      claimed_by: tr.querySelector('.claimed-by') ? text('.claimed-by') : null,
      claim_offered: tr.querySelector('button.claim') !== null,
      release_offered: tr.querySelector('button.release') !== null,
      assignee: assignee
        ? assignee.textContent.trim()
        : text('.assigned').split(':').slice(1).join(':').trim(),
    };
  });
}

async function clerkRow(page, id) {
  return page.$eval(`#items tr[data-thread="${id}"]`, (tr) => {
    const text = (sel) => (tr.querySelector(sel) || { textContent: '' }).textContent.trim();
    return {
      direction: text('.direction'),
      kind: text('.kind'),
      counterpart: text('.counterpart'),
      state: text('.state'),
      due: text('.due').replace(/\s+/g, ' '),
      overdue: tr.classList.contains('overdue'),
      milestones_done: tr.querySelectorAll('ol.progress li.done').length,
      milestones: [...tr.querySelectorAll('ol.progress li')].map((li) => li.childNodes[0].textContent.trim()),
      milestones_reached: [...tr.querySelectorAll('ol.progress li.done')].map((li) => li.childNodes[0].textContent.trim()),
      holder: text('.holder').replace(/\s+/g, ' '),
    };
  });
}

async function bookingRow(page, id) {
  return page.$eval(`#bookings tr[data-thread="${id}"]`, (tr) => ({
    state: tr.querySelector('.state').textContent.trim(),
    time: tr.querySelector('.time').textContent.trim(),
  }));
}

/// Whether the page fits a tablet held upright (768 px) without the whole
/// page scrolling sideways (wide tables scroll inside their own box).
async function fitsTablet(page) {
  await page.setViewportSize({ width: 768, height: 1024 });
  const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  await page.setViewportSize({ width: 1280, height: 900 });
  return fits;
}

/// The free times listed on a resource card.
async function freeSlots(page) {
  return page.$$eval('.resource .free-slot', (li) => li.map((l) => l.dataset.slot));
}

run(async (out) => {
  const b = await launch();
  const page = b.page;
  out.screenshots = {};
  out.tablet = {};
  try {
    // --- the hospital's liaison office ---------------------------------------
    await signIn(page, base, a.liaison[0], a.liaison[1]);
    await page.goto(base + '/liaison');
    const l = {};
    l.rows = await page.$$eval('#inbox tbody tr', (r) => r.length);
    l.fresh = await inboxRow(page, a.fresh);
    l.late = await inboxRow(page, a.late);
    l.link = await page.getAttribute(`#inbox tr[data-thread="${a.fresh}"] a.open-item`, 'href');
    l.doctors = await page.$$eval(`#inbox tr[data-thread="${a.fresh}"] select[name=doctor] option`,
      (o) => o.map((x) => x.value).filter((v) => v));
    l.handing = (await page.textContent('#handing')).trim();
    await submit(page, `#inbox tr[data-thread="${a.fresh}"] button.claim`);
    l.after_claim = await inboxRow(page, a.fresh);
    await page.selectOption(`#inbox tr[data-thread="${a.fresh}"] select[name=doctor]`, a.rad);
    await submit(page, `#inbox tr[data-thread="${a.fresh}"] button.assign`);
    l.after_assign = await inboxRow(page, a.fresh);
    l.after_assign.notice = await page.textContent('#done');
    out.screenshots.liaison = await screenshots(page, 'liaison');
    out.tablet.liaison = await fitsTablet(page);
    await submit(page, `#inbox tr[data-thread="${a.fresh}"] button.unassign`);
    l.after_unassign = await inboxRow(page, a.fresh);
    await page.selectOption(`#inbox tr[data-thread="${a.fresh}"] select[name=doctor]`, a.rad);
    await submit(page, `#inbox tr[data-thread="${a.fresh}"] button.assign`);
    l.after_reassign = await inboxRow(page, a.fresh);
    // The late one is assigned from its thread page, without claiming it first.
    await page.goto(`${base}/threads/${a.late}`);
    const threadView = async () => page.evaluate(() => ({
      assign: document.querySelectorAll('form#assign').length,
      forward: document.querySelectorAll('form#forward').length,
      doctors: [...document.querySelectorAll('#assign-to option')].map((o) => o.value).filter((v) => v),
      first_option: (document.querySelector('#assign-to option') || { textContent: '' }).textContent.trim(),
      back: document.querySelector('#back').getAttribute('href'),
      doctor: document.querySelector('#doctor').textContent.trim(),
      target: document.querySelector('#target').textContent.trim(),
      claimed: document.querySelector('#claimed') ? document.querySelector('#claimed').textContent.trim() : null,
      hint: (document.querySelector('form#assign .hint') || { textContent: '' }).textContent.trim(),
    }));
    l.thread_before = await threadView();
    l.thread_layout = await atWidths(page, async () => ({}));
    await page.selectOption('#assign-to', a.rad);
    await Promise.all([page.waitForURL(/done=1/), page.click('#do-assign')]);
    l.thread_after = await threadView();
    await page.click('#back');
    await page.waitForURL(/\/liaison$/);
    l.late_after_assign = await inboxRow(page, a.late);
    l.layout = await atWidths(page, async () => ({
      counterpart_lines: await lineCounts(page, '#inbox td.counterpart'),
      kind_lines: await lineCounts(page, '#inbox a.open-item'),
    }));
    out.liaison = l;

    // The liaison office also sees the facility view, with the readings.
    await page.click('#nav-clerk');
    await page.waitForURL(/\/clerk/);
    const lc = {};
    lc.readings = await page.$$eval('#readings tbody tr', (rows) => rows.map((r) => [
      r.querySelector('.reader').textContent.trim(), r.querySelector('.reports').textContent.trim()]));
    lc.total = (await page.textContent('#readings-total')).trim();
    lc.usage_section = (await page.$('#usage')) !== null;
    await Promise.all([page.waitForNavigation(), page.click('#previous-month')]);
    lc.previous_month_empty = (await page.$('#no-readings')) !== null;
    out.liaison_clerk = lc;

    // The hospital's liaison lists its CT scanner for bookings.
    await page.goto(base + '/booking');
    await page.fill('#add-resource input[name=name]', 'CT（64列）');
    await page.fill('#add-resource input[name=opening_hours]', '毎日 9:00-12:00、13:00-17:00 (30分)');
    await submit(page, '#add-resource button[type=submit]');
    await signOut(page);

    // --- the clinic's clerk: read-only progress ------------------------------
    await signIn(page, base, a.clerk_c[0], a.clerk_c[1]);
    await page.goto(base + '/clerk');
    const c = {};
    c.rows = await page.$$eval('#items tbody tr', (r) => r.length);
    const ids = await page.$$eval('#items tbody tr', (r) => r.map((x) => x.dataset.thread));
    c.fresh = await clerkRow(page, a.fresh);
    c.late = await clerkRow(page, a.late);
    for (const id of ids) {
      const r = await clerkRow(page, id);
      if (r.state === 'レポート済み') c.reported = r;
    }
    c.overdue_count = (await page.textContent('#overdue-count')).trim();
    c.layout = await atWidths(page, async () => ({
      open_lines: await lineCounts(page, '#items a.open-link'),
      counterpart_lines: await lineCounts(page, '#items td.counterpart'),
    }));
    c.usage = await page.$$eval('#usage tbody tr', (rows) => Object.fromEntries(rows.map((r) => [
      r.dataset.account, {
        sent: r.querySelector('.sent').textContent.trim(),
        received: r.querySelector('.received').textContent.trim(),
        unopened: r.querySelector('.unopened').textContent.trim(),
        overdue: r.querySelector('.overdue-items').textContent.trim(),
      }])));
    // What the JSON API says at the same moment, for the same session.
    c.usage_api = await page.evaluate(async () => (await fetch('/api/v1/stats/usage')).json());
    c.post_forms = await page.$$eval('form', (fs) => fs
      .filter((f) => f.method.toLowerCase() === 'post').map((f) => f.getAttribute('action')));
    // Every button but signing out, staying signed in and showing a month.
    c.action_buttons = await page.$$eval('button', (bs) => bs
      .filter((x) => !['logout', 'idle-stay'].includes(x.id))
      .filter((x) => !(x.form && x.form.method.toLowerCase() === 'get'))
      .map((x) => x.outerHTML));
    c.csv_links = await page.$$eval('a[download]', (as) => as.map((x) => x.getAttribute('href')));
    out.screenshots.clerk = await screenshots(page, 'clerk');
    out.tablet.clerk = await fitsTablet(page);
    // Forged posts with this session's valid token.
    c.forged = {};
    for (const action of ['claim', 'assign', 'release', 'unassign']) {
      c.forged[action] = await page.evaluate(async ([thread, action, doctor]) => {
        const body = new URLSearchParams({ csrf: document.body.dataset.csrf, doctor });
        const r = await fetch(`/liaison/${thread}/${action}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: body.toString(),
          redirect: 'manual',
        });
        const html = new DOMParser().parseFromString(await r.text(), 'text/html');
        return { status: r.status, text: (html.querySelector('#error') || html.body).textContent.trim() };
      }, [a.fresh, action, a.rad]);
    }
    c.liaison_page = await page.evaluate(async () => (await fetch('/liaison')).status);
    // A thread's way back leads where a clerk can go.
    await page.goto(`${base}/threads/${a.fresh}`);
    c.thread_back = await page.getAttribute('#back', 'href');
    c.thread_layout = await atWidths(page);
    const [back] = await Promise.all([page.waitForNavigation(), page.click('#back')]);
    c.thread_back_status = back ? back.status() : null;
    out.clerk = c;
    await signOut(page);

    // --- a booking moved to another time -------------------------------------
    const bk = {};
    await signIn(page, base, a.gp[0], a.gp[1]);
    await page.goto(base + '/booking');
    // The clinic's doctor picks the hospital from the facility list.
    const hospital = await page.$$eval('#facility option', (o) => o
      .find((x) => x.textContent.includes('さぬき中央病院')).value);
    await page.selectOption('#facility', hospital);
    await submit(page, '#show-facility');
    bk.free_before = (await freeSlots(page)).length;
    const choices = await page.$$eval('.resource select[name=slot] option', (o) => o
      .map((x) => x.value).filter((v) => v));
    bk.first_choice = choices[0];
    await page.click('.resource details.request summary');
    await page.selectOption('.resource select[name=slot]', bk.first_choice);
    await page.fill('.resource input[name=patient_id]', 'KTH-0042');
    await page.fill('.resource input[name=patient_name]', '金刀比羅 太郎');
    await page.fill('.resource input[name=consent_on]', new Date(Date.now() + 9 * 3600e3).toISOString().slice(0, 10));
    await page.selectOption('.resource select[name=consent_method]', 'written');
    await page.fill('.resource input[name=consent_by]', '琴平 看護師');
    await page.fill('.resource textarea[name=body]', '造影なしでお願いします。');
    await submit(page, '.resource button.request-button');
    bk.notice = await page.textContent('#done');
    bk.id = await page.$eval('#bookings tbody tr', (tr) => tr.dataset.thread);
    bk.requested = await bookingRow(page, bk.id);
    out.screenshots.booking = await screenshots(page, 'booking');
    out.tablet.booking = await fitsTablet(page);
    await signOut(page);

    // The hospital's clerk proposes another time; first, the usage of the
    // liaison office's shared inbox.
    await signIn(page, base, a.clerk_h[0], a.clerk_h[1]);
    await page.goto(base + '/clerk');
    out.clerk_h = await page.$eval(`#usage tr[data-account="liaison:${a.hospital}"]`, (r) => ({
      name: r.querySelector('.name').textContent.trim(),
      received: r.querySelector('.received').textContent.trim(),
      unopened: r.querySelector('.unopened').textContent.trim(),
    }));
    out.clerk_h.layout = await atWidths(page);
    await page.goto(base + '/booking');
    const offered = await page.$$eval(`#bookings tr[data-thread="${bk.id}"] .propose-form option`,
      (o) => o.map((x) => x.value).filter((v) => v));
    bk.first_held = !(await freeSlots(page)).includes(bk.first_choice) && !offered.includes(bk.first_choice);
    bk.other_time = offered[0];
    await page.selectOption(`#bookings tr[data-thread="${bk.id}"] .propose-form select[name=slot]`, bk.other_time);
    await submit(page, `#bookings tr[data-thread="${bk.id}"] button.propose`);
    bk.proposed = await bookingRow(page, bk.id);
    await signOut(page);

    // The clinic's doctor accepts the proposed time.
    await signIn(page, base, a.gp[0], a.gp[1]);
    await page.goto(base + '/booking');
    await submit(page, `#bookings tr[data-thread="${bk.id}"] button.accept-proposal`);
    bk.confirmed = await bookingRow(page, bk.id);
    await signOut(page);

    // The clinic's clerk cancels it; the time is free again.
    await signIn(page, base, a.clerk_c[0], a.clerk_c[1]);
    await page.goto(base + '/booking');
    await page.fill(`#bookings tr[data-thread="${bk.id}"] .cancel-form input[name=body]`, '患者都合');
    await submit(page, `#bookings tr[data-thread="${bk.id}"] button.cancel`);
    bk.cancelled = await bookingRow(page, bk.id);
    await page.goto(`${base}/booking?facility=${hospital}`);
    bk.freed_again = (await freeSlots(page)).includes(bk.other_time);
    out.booking = bk;
    await signOut(page);
    out.errors = b.errors;
  } finally {
    await b.close();
  }
});
