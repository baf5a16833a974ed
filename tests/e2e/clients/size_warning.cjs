// The large-item warning of the compose page in headless Chromium: files
// picked above the threshold show it (Japanese and English), fewer or smaller
// files hide it, a ZIP counts by the files inside, and a large item is sent
// all the same. Prints what a person would check.
//
// Then the radiologist's report form on the thread (a form with files) warns
// the same way.
//
// usage: node size_warning.cjs BASE GP_ID GP_PW RAD_ID PATIENT_ID PATIENT_NAME BIG1 BIG2 SMALL ZIP RAD_PW
'use strict';
const path = require('path');
const { launch, signIn, signOut, screenshots, run } = require('./browser.cjs');

const [base, gpId, gpPw, radId, patientId, patientName, big1, big2, small, zip, radPw] = process.argv.slice(2);
const bigNames = [path.basename(big1), path.basename(big2)];

/// Picks `files` in the file field and waits until the page lists `names`
/// (the list and the warning are updated together).
async function pick(page, files, names) {
  await page.setInputFiles('#files', files);
  await page.waitForFunction((names) => {
    const listed = [...document.querySelectorAll('#upload-list .upload-name')].map((e) => e.textContent);
    return JSON.stringify(listed) === JSON.stringify(names);
  }, names);
}

async function warning(page) {
  return {
    visible: await page.isVisible('#size-warning'),
    text: (await page.textContent('#size-warning')).trim(),
  };
}

run(async (out) => {
  const b = await launch();
  const page = b.page;
  try {
    await signIn(page, base, gpId, gpPw);
    await page.goto(base + '/compose?kind=reading_request');
    // Both languages, each with the large files picked.
    out.screenshots = await screenshots(page, 'size-warning', async (lang) => {
      await pick(page, [big1, big2], bigNames);
      out['warning_' + lang] = (await warning(page)).text;
    });

    await pick(page, [big1, big2], bigNames);
    out.large = await warning(page);
    await pick(page, [big1], bigNames.slice(0, 1));
    out.one_large = await warning(page);
    await pick(page, [small], [path.basename(small)]);
    out.small = await warning(page);
    await pick(page, [zip], bigNames);
    out.zip = await warning(page);

    // The warning does not stop the send.
    await page.selectOption('#to', 'account:' + radId.replace(/-/g, ''));
    await page.fill('#subject', '胸部CT 読影依頼');
    await page.fill('#patient_id', patientId);
    await page.fill('#patient_name', patientName);
    await page.fill('#consent_on', new Date().toISOString().slice(0, 10));
    await page.fill('#consent_by', '坂出 明美');
    await page.fill('#modality', 'CT');
    await page.fill('#body_part', '胸部');
    await page.fill('#clinical_question', '結節影の評価をお願いします');
    await pick(page, [big1, big2], bigNames);
    out.before_send = await warning(page);
    await Promise.all([page.waitForURL(/\/threads\/[0-9a-f]+/, { timeout: 60000 }), page.click('#send')]);
    out.thread_path = new URL(page.url()).pathname;
    out.attachments = await page.$$eval('a.attachment-link', (as) => as.map((a) => a.textContent.trim()));

    // The radiologist's forms with files on that thread warn too.
    await signOut(page);
    await signIn(page, base, radId, radPw);
    await page.goto(base + out.thread_path);
    // Accepted first: the report, which takes files, comes after.
    await Promise.all([page.waitForURL(/done=1/), page.click('#do-accept')]);
    const form = page.locator('form.action:has(input.step-files)').first();
    out.file_form_step = await form.getAttribute('data-step');
    const box = form.locator('.size-warning');
    const formWarning = async () => ({ visible: await box.isVisible(), text: (await box.textContent()).trim() });
    await form.locator('input.step-files').setInputFiles([big1, big2]);
    await box.waitFor({ state: 'visible' });
    out.step_large = await formWarning();
    await form.locator('input.step-files').setInputFiles([small]);
    await box.waitFor({ state: 'hidden' });
    out.step_small = await formWarning();
    // The report goes with the large pair all the same.
    await form.locator('input.step-files').setInputFiles([big1, big2]);
    await page.fill('form[data-step=report] textarea[name=findings]', '右上葉に8mmの結節あり。');
    await page.fill('form[data-step=report] textarea[name=impression]', '経過観察を推奨します。');
    await Promise.all([page.waitForURL(/done=1/, { timeout: 60000 }), page.click('#do-report')]);
    out.report_files = await page.$$eval('article.step', (as) =>
      [...as[as.length - 1].querySelectorAll('a.attachment-link')].map((a) => a.textContent.trim()));
    out.page_errors = b.errors;
  } finally {
    await b.close();
  }
});
