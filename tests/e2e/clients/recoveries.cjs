// Keys that survive people, in Chromium. Phase "reset": the operator resets a
// doctor's password on the console; the doctor (or whoever knows the issued
// password) signs in and chooses a password, and still cannot open the earlier
// item. Phase "approve": a liaison of the clinic approves on /recoveries; the
// doctor signs in again and opens the earlier item.
'use strict';
const { launch, signIn, screenshots, run } = require('./browser.cjs');

const cfg = JSON.parse(process.argv[2]);
const base = cfg.base;

async function text(page, sel) {
  return (await page.isVisible(sel)) ? (await page.textContent(sel)).trim() : null;
}

async function submit(page, sel) {
  await Promise.all([page.waitForNavigation(), page.click(`${sel} button[type=submit]`)]);
}

/// The item page as the signed-in browser sees it: status and whether the body shows.
async function item(page) {
  const r = await page.goto(`${base}/items/${cfg.item}`);
  return { status: r.status(), shows_body: (await page.content()).includes(cfg.marker) };
}

async function resetPhase(out) {
  const op = await launch();
  try {
    await signIn(op.page, base, cfg.operator.id, cfg.operator.password);
    await op.page.goto(base + '/operator/accounts');
    const row = `tr[data-account="${cfg.doctor.shown}"]`;
    await op.page.click(`${row} details:has(.reset-form) summary`);
    await op.page.check(`${row} .reset-form input[name=confirm]`);
    await submit(op.page, `${row} .reset-form`);
    out.issued = await text(op.page, '#issued-password');
    out.key_replaced = await text(op.page, '#key-replaced');
    out.restoration_notice = await text(op.page, '#restoration-requested');
    out.errors = op.errors;
  } finally {
    await op.close();
  }
  const person = await launch();
  try {
    out.first_landing = await signIn(person.page, base, cfg.doctor.id, out.issued);
    await person.page.fill('input[name=current_password]', out.issued);
    await person.page.fill('input[name=new_password]', cfg.doctor.chosen);
    await person.page.fill('input[name=confirm_password]', cfg.doctor.chosen);
    await submit(person.page, 'form[action="/password"]');
    out.after_change = new URL(person.page.url()).pathname;
    out.item_before = await item(person.page);
    const r = await person.page.goto(base + '/recoveries');
    out.person_recoveries_status = r.status();
    out.errors = out.errors.concat(person.errors);
  } finally {
    await person.close();
  }
}

async function approvePhase(out) {
  const liaison = await launch();
  try {
    await signIn(liaison.page, base, cfg.liaison.id, cfg.liaison.password);
    out.nav_link = await text(liaison.page, '#nav-recoveries');
    await liaison.page.goto(base + '/recoveries');
    const row = `tr[data-account="${cfg.doctor.stored}"]`;
    out.listed = await text(liaison.page, row);
    out.shots = await screenshots(liaison.page, 'recoveries');
    await submit(liaison.page, `${row} form`);
    out.done = await text(liaison.page, '#done');
    out.after_empty = await text(liaison.page, '#recoveries-empty');
    out.errors = liaison.errors;
  } finally {
    await liaison.close();
  }
  const person = await launch();
  try {
    await signIn(person.page, base, cfg.doctor.id, cfg.doctor.chosen);
    out.item_after = await item(person.page);
    out.errors = out.errors.concat(person.errors);
  } finally {
    await person.close();
  }
}

run(async (out) => {
  if (cfg.phase === 'reset') await resetPhase(out);
  else await approvePhase(out);
});
