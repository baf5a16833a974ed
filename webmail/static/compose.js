// Compose, progressively enhanced: without this script the form posts as a
// plain multipart form. With it, ZIP files are unpacked in the browser (each
// entry becomes its own attachment, judged by the server like any file), the
// form's text goes first and a `manifest` part names the files before their
// bytes, so the server streams each file straight into sealing, and every
// file gets its own progress bar. When the files picked add up to more than
// the page's `data-warn-above-bytes`, a warning says so before sending
// (size_warning.js); the item can still be sent.
'use strict';
// Care pathway: choosing a template shows its first-stage fields at once
// (the others hidden and disabled, so their required fields do not block
// sending). Booking: choosing a facility shows its equipment.
(function () {
  const template = document.getElementById('template');
  if (template) {
    const show = () => {
      for (const group of document.querySelectorAll('.stage-fields')) {
        const on = group.dataset.template === template.value;
        group.hidden = !on;
        for (const input of group.querySelectorAll('input, select, textarea')) input.disabled = !on;
      }
    };
    template.addEventListener('change', show);
    show();
  }
  const facility = document.getElementById('booking-facility');
  if (facility) facility.addEventListener('change', () => facility.form.submit());
})();
(function () {
  const form = document.getElementById('compose-form');
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  const list = document.getElementById('upload-list');
  const errorBox = document.getElementById('error');
  const inputs = [document.getElementById('files'), document.getElementById('folder')].filter(Boolean);

  function u16(v, o) { return v.getUint16(o, true); }
  function u32(v, o) { return v.getUint32(o, true); }

  // Entries of a ZIP as Files (stored or deflated; no ZIP64, no encryption).
  async function unzip(file) {
    if (typeof DecompressionStream === 'undefined') return null;
    const tailSize = Math.min(file.size, 65557);
    const tail = new DataView(await file.slice(file.size - tailSize).arrayBuffer());
    let eocd = -1;
    for (let i = tailSize - 22; i >= 0; i--) {
      if (u32(tail, i) === 0x06054b50) { eocd = i; break; }
    }
    if (eocd < 0) return null;
    const count = u16(tail, eocd + 10);
    const cdSize = u32(tail, eocd + 12);
    const cdOffset = u32(tail, eocd + 16);
    if (cdOffset === 0xffffffff || count === 0xffff) return null;
    const cd = new DataView(await file.slice(cdOffset, cdOffset + cdSize).arrayBuffer());
    const decoder = new TextDecoder('utf-8');
    const out = [];
    let p = 0;
    for (let n = 0; n < count; n++) {
      if (u32(cd, p) !== 0x02014b50) return null;
      const flags = u16(cd, p + 8);
      const method = u16(cd, p + 10);
      const csize = u32(cd, p + 20);
      const nameLen = u16(cd, p + 28);
      const extraLen = u16(cd, p + 30);
      const commentLen = u16(cd, p + 32);
      const local = u32(cd, p + 42);
      const name = decoder.decode(new Uint8Array(cd.buffer, cd.byteOffset + p + 46, nameLen));
      p += 46 + nameLen + extraLen + commentLen;
      if (name.endsWith('/')) continue;
      if ((flags & 1) || (method !== 0 && method !== 8)) return null;
      const lh = new DataView(await file.slice(local, local + 30).arrayBuffer());
      if (u32(lh, 0) !== 0x04034b50) return null;
      const start = local + 30 + u16(lh, 26) + u16(lh, 28);
      let data = file.slice(start, start + csize);
      if (method === 8) {
        data = await new Response(data.stream().pipeThrough(new DecompressionStream('deflate-raw'))).blob();
      }
      out.push(new File([data], name, { type: '' }));
    }
    return out;
  }

  async function chosenFiles() {
    const files = [];
    for (const input of inputs) {
      for (const f of input.files) {
        if (/\.zip$/i.test(f.name)) {
          const entries = await unzip(f);
          if (entries) { files.push(...entries); continue; }
        }
        files.push(f);
      }
    }
    return files;
  }

  function showFiles(files) {
    list.textContent = '';
    return files.map((f) => {
      const li = document.createElement('li');
      const name = document.createElement('span');
      name.className = 'upload-name';
      name.textContent = f.webkitRelativePath || f.name;
      const bar = document.createElement('progress');
      bar.max = Math.max(f.size, 1);
      bar.value = 0;
      bar.className = 'upload-progress';
      li.append(name, bar);
      list.append(li);
      return bar;
    });
  }

  function showSizeWarning(files) {
    if (window.renkeiSizeWarning) window.renkeiSizeWarning.show(form, files);
  }

  // Unpacking a ZIP takes a moment: only the latest pick is shown.
  let picks = 0;
  for (const input of inputs) {
    input.addEventListener('change', async () => {
      const pick = ++picks;
      const files = await chosenFiles();
      if (pick !== picks) return;
      showFiles(files);
      showSizeWarning(files);
    });
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
    errorBox.scrollIntoView();
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const send = document.getElementById('send');
    send.disabled = true;
    const files = await chosenFiles();
    const bars = showFiles(files);
    const data = new FormData();
    // The CSRF token first, then the text, then the manifest, then the files.
    data.append('csrf', form.elements.csrf.value);
    for (const el of form.elements) {
      if (!el.name || el.name === 'csrf' || el.type === 'file' || el.disabled) continue;
      if ((el.type === 'checkbox' || el.type === 'radio') && !el.checked) continue;
      data.append(el.name, el.value);
    }
    data.append('manifest', JSON.stringify(files.map((f) => ({
      name: f.webkitRelativePath || f.name, media_type: f.type || '', size: f.size,
    }))));
    for (const f of files) data.append('file', f, f.webkitRelativePath || f.name);

    const xhr = new XMLHttpRequest();
    xhr.open('POST', form.action);
    xhr.setRequestHeader('x-csrf-token', document.body.dataset.csrf || '');
    xhr.upload.addEventListener('progress', (e) => {
      // The body is the text, then the files in order: spread what was sent.
      let left = e.loaded - Math.max(0, e.total - files.reduce((s, f) => s + f.size, 0));
      files.forEach((f, i) => {
        const done = Math.max(0, Math.min(f.size, left));
        bars[i].value = f.size === 0 ? (left >= 0 ? 1 : 0) : done;
        left -= f.size;
      });
    });
    xhr.addEventListener('load', () => {
      const url = new URL(xhr.responseURL || form.action, location.href);
      // A thread, or a plain message's item.
      if (xhr.status < 400 && /^\/(threads|items)\//.test(url.pathname)) {
        bars.forEach((b) => { b.value = b.max; });
        location.assign(url.pathname + url.search);
        return;
      }
      send.disabled = false;
      const doc = new DOMParser().parseFromString(xhr.responseText, 'text/html');
      const e = doc.getElementById('error');
      showError(e && e.textContent.trim() ? e.textContent.trim() : 'HTTP ' + xhr.status);
    });
    xhr.addEventListener('error', () => {
      send.disabled = false;
      showError(document.documentElement.lang === 'en'
        ? 'The upload was interrupted. Check the connection and send again.'
        : '送信が中断されました。接続を確認して、もう一度送信してください。');
    });
    xhr.send(data);
  });
})();
