// The doctor's pages in headless Chromium: compose a reading request with two
// files, the recipient's inbox and unread count, the thread with verified
// signatures, accept and report, acknowledge, archive, search, XSS and CSRF,
// and a clerk's read-only view. Prints what a person would check.
//
// usage: node pages_doctor.cjs BASE GP_ID GP_PW RAD_ID RAD_PW CLERK_ID CLERK_PW FILE1 FILE2 MESSAGE_ID
'use strict';
const path = require('path');
const { launch, signIn, signOut, screenshots, run, download } = require('./browser.cjs');
const { threadState, signatures, fileSha256 } = require('./thread_page.cjs');
const { atWidths, lineCounts } = require('./layout.cjs');

const [base, gpId, gpPw, radId, radPw, clerkId, clerkPw, file1, file2, messageId] = process.argv.slice(2);
const XSS = '<script>alert(1)</script>';
const WORD = 'kagawazeta42';

/// A POST a forger would make: url-encoded, with or without the page's token.
async function forgedPost(page, url, body, withToken) {
  return page.evaluate(async ([url, body, withToken]) => {
    const params = new URLSearchParams(body);
    if (withToken) params.set('csrf', document.body.dataset.csrf);
    const r = await fetch(url, { method: 'POST', body: params, redirect: 'manual' });
    return r.status;
  }, [url, body, withToken]);
}

run(async (out) => {
  const b = await launch();
  const page = b.page;
  out.screenshots = [];
  try {
    // --- the clinic doctor composes -------------------------------------------
    out.gp_landed = await signIn(page, base, gpId, gpPw);
    await page.goto(base + '/compose?kind=reading_request');
    out.screenshots.push(...await screenshots(page, 'doctor-compose'));
    await page.selectOption('#to', 'account:' + radId.replace(/-/g, ''));
    await page.fill('#subject', XSS);
    await page.fill('#patient_id', 'P-0042');
    await page.fill('#patient_name', '香川 花子');
    await page.fill('#consent_on', new Date().toISOString().slice(0, 10));
    await page.fill('#consent_by', '坂出 明美');
    await page.fill('#modality', 'CT');
    await page.fill('#body_part', '胸部');
    await page.fill('#clinical_question', '結節影の評価をお願いします');
    await page.fill('#body', `胸部CTの読影をお願いします。${WORD} ${XSS}`);
    await page.setInputFiles('#files', [file1, file2]);
    await page.waitForFunction(() => document.querySelectorAll('#upload-list progress').length === 2);
    out.progress_bars = await page.locator('#upload-list progress').count();
    await Promise.all([page.waitForURL(/\/threads\/[0-9a-f]+/), page.click('#send')]);
    const threadPath = new URL(page.url()).pathname;
    out.thread_path = threadPath;
    out.sender_signatures = await signatures(page);
    out.subject_text = (await page.textContent('.subject-text')).trim();
    out.script_in_dom = await page.evaluate(() =>
      [...document.scripts].some((s) => s.textContent.includes('alert(1)')));
    await signOut(page);

    // --- the hospital's radiologist -------------------------------------------
    await signIn(page, base, radId, radPw);
    await page.goto(base + '/mail/inbox');
    out.rad_unread = (await page.textContent('#unread-count')).trim();
    out.rad_inbox_rows = await page.locator('table.items tr[data-id]').count();
    out.rad_inbox_row = (await page.textContent('table.items tr[data-id]')).replace(/\s+/g, ' ').trim();
    out.rad_inbox_row_bold = await page.locator('table.items tr.unread').count();
    out.screenshots.push(...await screenshots(page, 'doctor-inbox'));
    await Promise.all([page.waitForURL(/\/threads\//), page.click(`table.items a[href="${threadPath}"]`)]);
    out.rad_signatures = await signatures(page);
    out.rad_state_opened = await threadState(page);
    out.rad_actions = await page.$$eval('form.action', (fs) => fs.map((f) => f.dataset.step));
    // What the thread page says of the request: its subject, the doctor in
    // charge, the fields in the form's order, files by size and short digest.
    out.rad_thread = await page.evaluate(() => {
      const text = (sel) => document.querySelector(sel).textContent.trim();
      return {
        title: text('#thread-title'),
        kind: text('#thread-kind'),
        doctor: text('#doctor'),
        target: text('#target'),
        back: document.querySelector('#back').getAttribute('href'),
        fields: [...document.querySelectorAll('article.step dl.fields dt')].map((d) => d.textContent.trim()),
        sizes: [...document.querySelectorAll('.attachments .size')].map((x) => [x.textContent.trim(), x.dataset.bytes]),
        digests: [...document.querySelectorAll('.attachments .digest')].map((x) => [x.textContent.trim(), x.title]),
      };
    });
    out.rad_thread_layout = await atWidths(page, async () => ({
      kind_lines: await lineCounts(page, '#thread-kind'),
      english_labels: await page.$$eval('article.step dl.fields dt', (ds) => ds.map((d) => d.textContent.trim())),
    }));
    // The attachments download as they were sent, under safe names.
    out.downloads = [];
    for (const href of await page.$$eval('a.attachment-link', (as) => as.map((a) => a.getAttribute('href')))) {
      out.downloads.push(await download(page, href));
    }
    out.sent_sha256 = [fileSha256(file1), fileSha256(file2)];
    out.sent_names = [path.basename(file1), path.basename(file2)];
    // A POST without the CSRF token is refused and changes nothing.
    out.forged_without_token = await forgedPost(page, base + threadPath + '/steps', 'step=accept', false);
    await page.reload();
    out.state_after_forgery = await threadState(page);
    // Accept, then report.
    await Promise.all([page.waitForURL(/done=1/), page.click('#do-accept')]);
    out.rad_state_accepted = await threadState(page);
    await page.fill('form[data-step=report] textarea[name=findings]', '右上葉に8mmの結節あり。');
    await page.fill('form[data-step=report] textarea[name=impression]', '経過観察を推奨します。');
    await Promise.all([page.waitForURL(/done=1/), page.click('#do-report')]);
    out.rad_state_reported = await threadState(page);
    out.screenshots.push(...await screenshots(page, 'doctor-thread'));
    await signOut(page);

    // --- the requester sees the report, verified, and acknowledges ------------
    await signIn(page, base, gpId, gpPw);
    await page.goto(base + '/mail/inbox');
    out.gp_unread = (await page.textContent('#unread-count')).trim();
    await page.goto(base + threadPath);
    out.gp_signatures = await signatures(page);
    out.gp_report_text = await page.textContent('#steps');
    await Promise.all([page.waitForURL(/done=1/), page.click('#do-acknowledge')]);
    out.gp_state_acknowledged = await threadState(page);
    out.gp_actions_after = await page.locator('form.action').count();

    // --- archive moves it ------------------------------------------------------
    await page.goto(base + '/mail/inbox');
    const inboxBefore = await page.locator(`table.items a[href="${threadPath}"]`).count();
    while (await page.locator(`table.items tr:has(a[href="${threadPath}"]) button.archive`).count() > 0) {
      await Promise.all([
        page.waitForNavigation(),
        page.locator(`table.items tr:has(a[href="${threadPath}"]) button.archive`).first().click(),
      ]);
    }
    out.inbox_rows_before_archive = inboxBefore;
    out.inbox_rows_after_archive = await page.locator(`table.items a[href="${threadPath}"]`).count();
    await page.goto(base + '/mail/archive');
    out.archive_rows = await page.locator(`table.items a[href="${threadPath}"]`).count();

    // --- search by a word of the body: posted, never in the URL ---------------
    await page.goto(base + '/mail/search');
    await page.fill('input[name=q]', WORD);
    await Promise.all([page.waitForNavigation(), page.click('#search')]);
    out.search_url = page.url();
    out.search_hits = await page.locator(`table.items a[href="${threadPath}"]`).count();
    await page.fill('input[name=q]', 'no-such-word-anywhere');
    await Promise.all([page.waitForNavigation(), page.click('#search')]);
    out.search_none = await page.locator('#not-found').count();
    await signOut(page);

    // --- the clerk: read-only ------------------------------------------------
    await signIn(page, base, clerkId, clerkPw);
    await page.goto(base + threadPath);
    out.clerk_status_text = await page.textContent('main');
    out.clerk_forms = await page.locator('main form').count();
    out.clerk_read_only = await page.locator('#read-only').count();
    out.clerk_signatures = await signatures(page);
    out.clerk_forged_with_token = await forgedPost(page, base + threadPath + '/steps', 'step=withdraw', true);
    await page.goto(base + threadPath);
    out.clerk_state_after = await threadState(page);
    out.clerk_back = await page.getAttribute('#back', 'href');
    await signOut(page);

    // --- a plain message: the radiologist replies and archives it ------------
    await signIn(page, base, radId, radPw);
    await page.goto(base + '/mail/inbox');
    const msgHref = await page.getAttribute(`table.items tr[data-id="${messageId}"] a.open-item`, 'href');
    out.msg_href = msgHref;
    await page.goto(base + msgHref);
    const itemView = () => page.evaluate(() => {
      const text = (sel) => (document.querySelector(sel) || { textContent: '' }).textContent.trim();
      return {
        title: text('#thread-title'),
        kind: text('#thread-kind'),
        reply: document.querySelectorAll('form#reply').length,
        forward: document.querySelectorAll('form#forward').length,
        archive: document.querySelectorAll('form#archive').length,
        reply_to: text('#reply-to'),
        reply_subject: (document.querySelector('#reply-subject') || { value: '' }).value,
        back: document.querySelector('#back').getAttribute('href'),
      };
    });
    out.msg = await itemView();
    out.msg_layout = await atWidths(page);
    await page.fill('#reply-body', '承知しました。参加いたします。');
    await Promise.all([page.waitForURL(/done=reply/), page.click('#do-reply')]);
    out.msg_replied = (await page.textContent('#done')).trim();
    await Promise.all([page.waitForURL(/\/mail\/inbox/), page.click('#do-archive')]);
    out.msg_in_inbox_after_archive = await page.locator(`table.items tr[data-id="${messageId}"]`).count();
    await page.goto(base + '/mail/archive');
    out.msg_in_archive = await page.locator(`table.items tr[data-id="${messageId}"]`).count();
    await signOut(page);

    // --- the sender's Sent folder and the reply --------------------------------
    await signIn(page, base, gpId, gpPw);
    await page.goto(base + '/mail/sent');
    out.sent = await page.evaluate((messageId) => {
      const rows = [...document.querySelectorAll('table.items tr[data-id]')];
      const msg = rows.find((r) => r.dataset.id === messageId);
      return {
        rows: rows.length,
        sent_marks: document.querySelectorAll('table.items .sent-mark').length,
        sent_words: rows.filter((r) => r.textContent.includes('(送信)')).length,
        mark_unread: document.querySelectorAll('table.items .mark-unread').length,
        mark_read: document.querySelectorAll('table.items .mark-read').length,
        message: msg ? {
          counterpart: msg.querySelector('.counterpart').textContent.trim(),
          state: msg.querySelector('.state').textContent.trim(),
        } : null,
      };
    }, messageId);
    out.sent_layout = await atWidths(page);
    await page.goto(base + '/mail/inbox');
    const replyHref = await page.$$eval('table.items a.open-item', (as) => as
      .map((x) => x.getAttribute('href')).find((h) => h.startsWith('/items/')));
    await page.goto(base + replyHref);
    out.reply_seen = await itemView();
    out.reply_body = (await page.textContent('article.step')).replace(/\s+/g, ' ');
    out.errors = b.errors;
  } finally {
    await b.close();
  }
});
