// What the thread page shows, read the same way by every browser test that
// walks a thread (story, pages_doctor, pages_referral).
'use strict';
const crypto = require('crypto');
const fs = require('fs');

/// The thread's state label.
async function threadState(page) {
  return (await page.textContent('#thread-state')).trim();
}

/// Signature verdicts on the page, and how many steps it shows.
async function signatures(page) {
  return page.evaluate(() => ({
    valid: document.querySelectorAll('[data-signature=valid]').length,
    broken: document.querySelectorAll('[data-signature=broken]').length,
    steps: document.querySelectorAll('article.step').length,
  }));
}

/// SHA-256 of a file as sent, to compare with what a download hashed to.
function fileSha256(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

module.exports = { threadState, signatures, fileSha256 };
