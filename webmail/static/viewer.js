// The DICOM viewer's viewport (page: /items/{id}/viewer). One frame at a time
// from the render route, kept as blob URLs so a prefetched slice shows without
// another request; the wheel, ↑/↓, PageUp/PageDown, Home/End, the slider and
// a vertical drag scroll through the series. The page records what it shows
// on #viewport (data-shown, data-attachment, data-frame) and the time of the
// first slice (data-first-slice-ms, from navigation start).
'use strict';
(function () {
  const viewport = document.getElementById('viewport');
  if (!viewport) return;
  const $ = (id) => document.getElementById(id);
  const img = $('view-img');
  const errorBox = $('slice-error');
  const loading = $('slice-loading');
  const pos = $('slice-pos');
  const instance = $('slice-instance');
  const frameOut = $('slice-frame');
  const windowOut = $('slice-window');
  const download = $('slice-download');
  const range = $('slice-range');
  const presetSelect = $('preset');
  const centerInput = $('center');
  const widthInput = $('width');
  const seriesField = document.querySelector('#window-form input[name=series]');
  const item = viewport.dataset.item;
  const ja = document.documentElement.lang === 'ja';

  const AHEAD = 6; // slices fetched ahead in the direction of travel
  const BEHIND = 2;
  const KEEP = 40; // cached slices farther than this from the current one are dropped

  let slices = []; // [attachment, frame, instance number | null]
  let current = 0;
  let direction = 1;
  let windowQuery = viewport.dataset.windowQuery || 'preset=default';
  const cache = new Map(); // url -> { index, promise, result }

  function url(i) {
    const [attachment, frame] = slices[i];
    return `/api/v1/envelopes/${encodeURIComponent(item)}/attachments/${attachment}/render?frame=${frame}&${windowQuery}`;
  }

  // The slice as a blob URL, or the route's own message when it cannot be shown.
  function request(key) {
    return fetch(key, { credentials: 'same-origin' })
      .then(async (r) => {
        if (r.ok) {
          const blob = await r.blob();
          return { src: URL.createObjectURL(blob), window: r.headers.get('x-renkei-window') || '' };
        }
        let text = '';
        try {
          const body = await r.json();
          text = (ja ? body.message_ja : body.message) || body.message || '';
        } catch (_) { /* not JSON: the generic text below */ }
        // 503: every render slot was busy; shown, but asked again next time.
        return { error: text || viewport.dataset.failed, busy: r.status === 503 };
      })
      .catch(() => ({ error: viewport.dataset.failed }));
  }

  function remember(key, index, promise) {
    const entry = { index, result: null, dropped: false };
    entry.promise = promise.then((result) => {
      entry.result = result;
      if (result.busy && cache.get(key) === entry) cache.delete(key);
      if (entry.dropped) release(result);
      return result;
    });
    cache.set(key, entry);
    return entry;
  }

  function load(i) {
    const key = url(i);
    return cache.get(key) || remember(key, i, request(key));
  }

  // The page's own <img> already loads the first slice (it also shows without
  // scripts): adopt it instead of asking twice; on failure ask for the message.
  // A file without a window of its own (a dose map) is asked for again: the
  // window the server chose for it comes with the response.
  function adoptFirst() {
    if (!slices.length || img.getAttribute('src') !== url(0) || !viewport.dataset.firstWindow) return;
    const key = url(0);
    const loaded = () => ({ src: key, window: viewport.dataset.firstWindow || '' });
    const settled = new Promise((resolve) => {
      if (img.complete) {
        resolve(img.naturalWidth > 0 ? loaded() : request(key));
        return;
      }
      img.addEventListener('load', () => resolve(loaded()), { once: true });
      img.addEventListener('error', () => resolve(request(key)), { once: true });
    });
    remember(key, 0, settled);
  }

  // Blob URLs are freed once neither the cache nor the viewport holds them.
  let orphan = null;
  function release(result) {
    if (!result || !result.src) return;
    if (img.getAttribute('src') === result.src) orphan = result.src;
    else URL.revokeObjectURL(result.src);
  }

  function display(src) {
    if (img.getAttribute('src') !== src) img.src = src;
    if (orphan && orphan !== src) {
      URL.revokeObjectURL(orphan);
      orphan = null;
    }
  }

  function prune(all) {
    for (const [key, entry] of cache) {
      if (!all && Math.abs(entry.index - current) <= KEEP) continue;
      entry.dropped = true;
      release(entry.result);
      cache.delete(key);
    }
  }

  function prefetch() {
    for (let k = 1; k <= AHEAD; k++) {
      const i = current + direction * k;
      if (i >= 0 && i < slices.length) load(i);
    }
    for (let k = 1; k <= BEHIND; k++) {
      const i = current - direction * k;
      if (i >= 0 && i < slices.length) load(i);
    }
  }

  function describe(i) {
    const [attachment, frame, number] = slices[i];
    pos.textContent = `${i + 1} / ${slices.length}`;
    instance.textContent = number == null ? '' : String(number);
    frameOut.textContent = String(frame + 1);
    range.value = String(i + 1);
    download.href = `/items/${encodeURIComponent(item)}/attachments/${attachment}`;
    viewport.dataset.position = String(i);
  }

  function show(i) {
    if (!slices.length) return;
    current = Math.max(0, Math.min(slices.length - 1, i));
    describe(current);
    const wanted = current;
    const key = url(wanted);
    const entry = load(wanted);
    if (!entry.result) loading.hidden = false;
    entry.promise.then(async (result) => {
      if (wanted !== current || url(current) !== key) return; // scrolled on meanwhile
      loading.hidden = true;
      const [attachment, frame] = slices[wanted];
      if (result.error) {
        img.hidden = true;
        img.removeAttribute('src');
        if (orphan) {
          URL.revokeObjectURL(orphan);
          orphan = null;
        }
        errorBox.textContent = result.error;
        errorBox.hidden = false;
      } else {
        errorBox.hidden = true;
        display(result.src);
        try { await img.decode(); } catch (_) { /* shown by the load anyway */ }
        if (wanted !== current || url(current) !== key) return;
        img.hidden = false;
        if (result.window) {
          windowOut.textContent = result.window.replace(' ', ' / ');
          viewport.dataset.window = result.window;
        }
        if (presetSelect.value !== 'custom' && result.window) {
          const [c, w] = result.window.split(' ');
          centerInput.value = c;
          widthInput.value = w;
        }
      }
      viewport.dataset.attachment = String(attachment);
      viewport.dataset.frame = String(frame);
      viewport.dataset.shown = String(wanted);
      viewport.dataset.shownUrl = key;
      viewport.dataset.state = result.error ? 'error' : 'image';
      if (!viewport.dataset.firstSliceMs) viewport.dataset.firstSliceMs = performance.now().toFixed(1);
      prune(false);
    });
    // A slice not yet here is asked for alone: neighbours asked at the same
    // time would share the server's cores with it (the first slice above all).
    if (entry.result) prefetch();
    else entry.promise.then(() => { if (wanted === current) prefetch(); });
  }

  function step(n) {
    if (n === 0) return;
    direction = n > 0 ? 1 : -1;
    show(current + n);
  }

  function selectSeries(link, push, first) {
    for (const a of document.querySelectorAll('.series-link')) a.removeAttribute('aria-current');
    link.setAttribute('aria-current', 'true');
    try { slices = JSON.parse(link.dataset.slices || '[]'); } catch (_) { slices = []; }
    range.max = String(Math.max(1, slices.length));
    if (seriesField) seriesField.value = link.dataset.series;
    if (push) history.replaceState(null, '', link.href);
    prune(true);
    if (first) adoptFirst();
    direction = 1;
    show(0);
  }

  function setWindow(query) {
    windowQuery = query;
    prune(true);
    show(current);
  }

  // --- wiring -------------------------------------------------------------------
  $('viewer-nav').hidden = false;
  for (const a of document.querySelectorAll('.series-link')) {
    a.addEventListener('click', (e) => { e.preventDefault(); selectSeries(a, true); viewport.focus(); });
  }
  const customOption = new Option(ja ? '任意' : 'Custom', 'custom');
  customOption.hidden = true;
  presetSelect.add(customOption);
  if (/(^|&)center=/.test(windowQuery)) presetSelect.value = 'custom';
  presetSelect.addEventListener('change', () => {
    if (presetSelect.value === 'custom') return;
    setWindow(`preset=${encodeURIComponent(presetSelect.value)}`);
  });
  $('window-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const c = centerInput.value.trim();
    const w = widthInput.value.trim();
    // Sent as typed: the render route says what is wrong with a bad pair.
    presetSelect.value = 'custom';
    setWindow(`center=${encodeURIComponent(c)}&width=${encodeURIComponent(w)}`);
    viewport.focus();
  });
  $('prev').addEventListener('click', () => step(-1));
  $('next').addEventListener('click', () => step(1));
  range.addEventListener('input', () => {
    const i = Number(range.value) - 1;
    direction = i >= current ? 1 : -1;
    show(i);
  });

  let wheelRest = 0;
  viewport.addEventListener('wheel', (e) => {
    e.preventDefault();
    // A mouse notch is one slice; a touchpad's small deltas add up to one.
    const dy = e.deltaMode === 1 ? e.deltaY * 40 : e.deltaMode === 2 ? e.deltaY * 800 : e.deltaY;
    if (Math.abs(dy) >= 40) {
      wheelRest = 0;
      step(Math.sign(dy));
      return;
    }
    wheelRest += dy;
    if (Math.abs(wheelRest) >= 40) {
      step(Math.sign(wheelRest));
      wheelRest = 0;
    }
  }, { passive: false });

  document.addEventListener('keydown', (e) => {
    const t = e.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA')) return;
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const page = Math.max(1, Math.round(slices.length / 10));
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    if (e.key in moves) {
      e.preventDefault();
      step(moves[e.key]);
    } else if (e.key === 'Home' || e.key === 'End') {
      e.preventDefault();
      direction = e.key === 'Home' ? 1 : -1;
      show(e.key === 'Home' ? 0 : slices.length - 1);
    }
  });

  // Touch: a vertical drag on the image scrolls, one slice per 12 px.
  let dragY = null;
  viewport.addEventListener('pointerdown', (e) => {
    if (e.pointerType === 'mouse') return;
    dragY = e.clientY;
    viewport.setPointerCapture(e.pointerId);
  });
  viewport.addEventListener('pointermove', (e) => {
    if (dragY === null) return;
    const n = Math.trunc((e.clientY - dragY) / 12);
    if (n !== 0) { dragY += n * 12; step(n); }
  });
  const endDrag = () => { dragY = null; };
  viewport.addEventListener('pointerup', endDrag);
  viewport.addEventListener('pointercancel', endDrag);

  const selected = document.querySelector('.series-link[aria-current="true"]') || document.querySelector('.series-link');
  if (selected) selectSeries(selected, false, true);
})();
