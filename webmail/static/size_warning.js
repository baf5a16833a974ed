// The soft large-item warning, shared by the compose page (compose.js calls
// `renkeiSizeWarning.show` with the files it will send, ZIPs unpacked) and the
// thread page's reply and report forms (wired here): when the files picked add
// up to more than the form's `data-warn-above-bytes`, its `.size-warning` box
// says so, from the box's `data-text` with {limit} and {total}. Sending is
// never blocked.
'use strict';
window.renkeiSizeWarning = (function () {
  // Sizes as file managers show them (1 GB = 1024³ bytes), so the figure
  // matches what the sender sees beside the file.
  function sizeText(bytes, digits) {
    for (const [unit, size] of [['GB', 1024 ** 3], ['MB', 1024 ** 2], ['KB', 1024]]) {
      if (bytes >= size) return (bytes / size).toFixed(digits) + ' ' + unit;
    }
    return bytes + ' B';
  }

  function show(form, files) {
    const box = form.querySelector('.size-warning');
    const limitBytes = Number(form.dataset.warnAboveBytes) || 0;
    if (!box || !limitBytes) return;
    const total = files.reduce((s, f) => s + f.size, 0);
    if (total <= limitBytes) {
      box.hidden = true;
      box.textContent = '';
      return;
    }
    const limit = sizeText(limitBytes, 1);
    let shown = sizeText(total, 1);
    if (shown === limit) shown = sizeText(total, 2); // never "more than 1.0 (total 1.0)"
    box.textContent = box.dataset.text.replace('{limit}', limit).replace('{total}', shown);
    box.hidden = false;
  }

  // Plain file fields (the thread's step forms): every field of the form counts.
  for (const form of document.querySelectorAll('form[data-warn-above-bytes]:not(#compose-form)')) {
    const inputs = [...form.querySelectorAll('input[type=file]')];
    for (const input of inputs) {
      input.addEventListener('change', () => show(form, inputs.flatMap((i) => [...i.files])));
    }
  }

  return { show };
})();
