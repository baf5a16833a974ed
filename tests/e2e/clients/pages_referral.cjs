// A referral with a reply letter, through the pages in headless Chromium: a
// clinic doctor composes a referral (patient, consent, the referral letter as
// a PDF) to a hospital surgeon; the surgeon accepts, forwards the thread to a
// colleague and answers with a reply letter and a file; the colleague reads
// it all and can take no step; the clinic doctor sees the reply, verified,
// downloads its file and acknowledges. Two more referrals to the hospital's
// liaison office: one the clinic doctor withdraws, one the office declines
// with a reason. Prints what each person would check.
//
// usage: node pages_referral.cjs BASE HOSPITAL GP_ID GP_PW SURGEON_ID SURGEON_PW
//        COLLEAGUE_ID COLLEAGUE_PW LIAISON_ID LIAISON_PW LETTER_PDF REPLY_PNG WITH_HISTORY
'use strict';
const { launch, signIn, signOut, screenshots, run, download } = require('./browser.cjs');
const { threadState, signatures, fileSha256 } = require('./thread_page.cjs');
const { atWidths } = require('./layout.cjs');

const [base, hospital, gpId, gpPw, surgeonId, surgeonPw, colleagueId, colleaguePw,
  liaisonId, liaisonPw, letterPdf, replyPng, withHistory] = process.argv.slice(2);

/// What the thread page offers this reader: step forms and the forward form.
async function offered(page) {
  return page.evaluate(() => ({
    steps: [...document.querySelectorAll('form.action')].map((f) => f.dataset.step),
    forward: document.querySelectorAll('form#forward').length,
    colleagues: [...document.querySelectorAll('#forward-to option')]
      .map((o) => o.value).filter((v) => v !== ''),
    first_option: (document.querySelector('#forward-to option') || { textContent: '' }).textContent.trim(),
    assign: document.querySelectorAll('form#assign').length,
    doctors: [...document.querySelectorAll('#assign-to option')]
      .map((o) => o.value).filter((v) => v !== ''),
  }));
}

/// The step articles as a reader sees them: label, signer, verdict, text, files.
async function history(page) {
  return page.$$eval('article.step', (as) => as.map((a) => ({
    label: a.querySelector('h3').textContent.trim(),
    signer: a.querySelector('.signer-name').textContent.trim(),
    signature: a.querySelector('[data-signature]').dataset.signature,
    text: a.textContent.replace(/\s+/g, ' '),
    files: [...a.querySelectorAll('a.attachment-link')].map((l) => l.textContent.trim()),
  })));
}

async function submit(page, selector) {
  await Promise.all([page.waitForURL(/done=1/), page.click(selector)]);
}

const today = new Date(Date.now() + 9 * 3600e3).toISOString().slice(0, 10);

/// Composes a referral through the compose page; returns the thread's path.
async function compose(page, to, subject, files) {
  await page.goto(base + '/compose?kind=referral');
  await page.selectOption('#to', to);
  await page.fill('#subject', subject);
  await page.fill('#patient_id', 'KTH-0815');
  await page.fill('#patient_name', '琴平 花子');
  await page.fill('#consent_on', today);
  await page.selectOption('#consent_method', 'written');
  await page.fill('#consent_by', '琴平 看護師');
  // The patient is a minor: her mother consented.
  await page.selectOption('#consent_given_by', 'guardian');
  await page.fill('#consent_relation', '母');
  await page.fill('#purpose', '手術適応のご判断をお願いします');
  await page.fill('#diagnosis', '右鼠径ヘルニア');
  await page.fill('#body', '平素より大変お世話になっております。右鼠径部の膨隆を認め、ご紹介申し上げます。');
  if (files.length) await page.setInputFiles('#files', files);
  await Promise.all([page.waitForURL(/\/threads\/[0-9a-f]+$/), page.click('#send')]);
  return new URL(page.url()).pathname;
}

run(async (out) => {
  const b = await launch();
  const page = b.page;
  out.screenshots = [];
  try {
    // --- the clinic doctor refers the patient to the surgeon, and two more to the office
    await signIn(page, base, gpId, gpPw);
    const thread = await compose(page, 'account:' + surgeonId.replace('-', ''), '右鼠径ヘルニア 紹介状', [letterPdf]);
    out.sent_state = await threadState(page);
    out.sent_files = await page.$$eval('a.attachment-link', (as) => as.map((a) => a.textContent.trim()));
    out.gp_offered_after_sending = await offered(page);
    const toWithdraw = await compose(page, 'liaison:' + hospital, '紹介（取り下げ予定）', []);
    await page.fill('form[data-step=withdraw] textarea[name=body]', '患者さんのご希望で当院にて経過をみます。');
    await submit(page, '#do-withdraw');
    out.withdrawn_state = await threadState(page);
    out.withdrawn_offered = await offered(page);
    const toDecline = await compose(page, 'liaison:' + hospital, '紹介（地域連携室へ）', []);
    await signOut(page);

    // --- the surgeon: reads it verified, accepts, forwards, replies with a file
    await signIn(page, base, surgeonId, surgeonPw);
    await page.goto(base + '/mail/inbox');
    out.surgeon_inbox = await page.locator(`table.items a[href="${thread}"]`).count();
    await page.goto(base + thread);
    out.surgeon_opened = await threadState(page);
    out.surgeon_signatures = await signatures(page);
    out.surgeon_sees = (await page.textContent('#steps')).replace(/\s+/g, ' ');
    out.surgeon_offered = await offered(page);
    out.surgeon_heading = [(await page.textContent('#thread-title')).trim(),
      (await page.textContent('#thread-kind')).trim()];
    await submit(page, '#do-accept');
    out.surgeon_accepted = await threadState(page);
    // The referral sent with history, medication and course.
    const fieldsNow = () => page.$$eval('article.step dl.fields dt', (ds) => ds.map((d) => [
      d.textContent.trim(), d.nextElementSibling.textContent.trim()]));
    await page.goto(base + '/threads/' + withHistory);
    out.history_fields = { ja: await fieldsNow() };
    out.history_layout = await atWidths(page);
    await page.goto(base + '/threads/' + withHistory + '?lang=en');
    out.history_fields.en = (await fieldsNow()).map((f) => f[0]);
    await page.goto(base + thread + '?lang=ja');
    await page.selectOption('#forward-to', colleagueId);
    await submit(page, '#do-forward');
    out.forward_notice = await page.locator('#done').count();
    out.surgeon_offered_after_accept = (await offered(page)).steps;
    await page.fill('form[data-step=reply] textarea[name=body]',
      'ご紹介ありがとうございました。来週、腹腔鏡下ヘルニア修復術を予定いたしました。術前検査の結果を添付します。');
    await page.setInputFiles('form[data-step=reply] input[type=file]', [replyPng]);
    await submit(page, '#do-reply');
    out.surgeon_replied = await threadState(page);
    await signOut(page);

    // --- the colleague the thread was forwarded to: reads, takes no step
    await signIn(page, base, colleagueId, colleaguePw);
    await page.goto(base + '/mail/inbox');
    out.colleague_inbox = await page.locator(`table.items a[href="${thread}"]`).count();
    await page.goto(base + thread);
    out.colleague_signatures = await signatures(page);
    out.colleague_history = await history(page);
    out.colleague_offered = await offered(page);
    out.colleague_forged_reply = await page.evaluate(async (url) => {
      const params = new URLSearchParams({ csrf: document.body.dataset.csrf, step: 'acknowledge' });
      const r = await fetch(url, { method: 'POST', body: params, redirect: 'manual' });
      return r.status;
    }, base + thread + '/steps');
    await signOut(page);

    // --- the hospital's liaison office: no forward on a doctor's item, declines one of its own
    await signIn(page, base, liaisonId, liaisonPw);
    await page.goto(base + thread);
    out.liaison_on_doctors_item = await offered(page);
    await page.goto(base + toDecline);
    out.liaison_on_shared_item = await offered(page);
    await page.fill('form[data-step=decline] textarea[name=reason]', '当院では対応できない診療科のため');
    await submit(page, '#do-decline');
    out.declined_state = await threadState(page);
    await signOut(page);

    // --- the clinic doctor: the reply letter, verified, its file, acknowledged
    await signIn(page, base, gpId, gpPw);
    await page.goto(base + thread);
    out.gp_state = await threadState(page);
    out.gp_signatures = await signatures(page);
    out.gp_history = await history(page);
    const replyFile = page.locator('article.step').last().locator('a.attachment-link');
    out.reply_download = await download(page, await replyFile.getAttribute('href'));
    out.reply_png_sha256 = fileSha256(replyPng);
    out.gp_offered = (await offered(page)).steps;
    out.screenshots.push(...await screenshots(page, 'referral'));
    await submit(page, '#do-acknowledge');
    out.gp_acknowledged = await threadState(page);
    await page.goto(base + toDecline);
    out.gp_declined_history = await history(page);
    out.gp_declined_state = await threadState(page);
    await page.goto(base + toWithdraw);
    out.gp_withdrawn_state = await threadState(page);
    out.errors = b.errors;
  } finally {
    await b.close();
  }
});
