// Warns before the idle timeout ends the session, and shows the expired page
// when it has. The server decides; this only tells the person in time.
'use strict';
(function () {
  const body = document.body;
  const idle = Number(body.dataset.idleSeconds || 0);
  if (!idle) return;
  const warning = document.getElementById('idle-warning');
  const stay = document.getElementById('idle-stay');
  // Two minutes ahead, or at 80 % of a short timeout.
  const lead = Math.min(120, Math.floor(idle * 0.2));
  let warnTimer = 0;
  let endTimer = 0;
  function arm(seconds) {
    clearTimeout(warnTimer);
    clearTimeout(endTimer);
    if (warning) warning.hidden = true;
    warnTimer = setTimeout(() => { if (warning) warning.hidden = false; }, (seconds - lead) * 1000);
    // Reloading asks the server, which sends an expired session to the sign-in page.
    endTimer = setTimeout(() => { window.location.reload(); }, (seconds + 1) * 1000);
  }
  if (stay) {
    stay.addEventListener('click', async () => {
      const r = await fetch('/api/v1/me', { credentials: 'same-origin' });
      if (r.ok) arm(idle); else window.location.reload();
    });
  }
  arm(idle);
})();
