// Security keys and passkeys: the browser half of WebAuthn (registration on
// /security, the second sign-in step, removal with re-authentication). Plain
// script served from this origin; the server holds every decision.
(function () {
  'use strict';

  function toBuf(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) { s += '='; }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function message(data, status) {
    if (!data) { return String(status); }
    return document.documentElement.lang === 'en' ? data.message : (data.message_ja || data.message);
  }

  async function call(method, url, body) {
    var r = await fetch(url, {
      method: method,
      headers: { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin'
    });
    var data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (!r.ok) {
      var err = new Error(message(data, r.status));
      err.code = data && data.error;
      throw err;
    }
    return data;
  }

  function showError(err) {
    var el = document.getElementById('webauthn-error');
    if (el) {
      el.textContent = String((err && err.message) || err);
      el.hidden = false;
    }
  }

  async function assertion(options) {
    var pk = options.publicKey;
    pk.challenge = toBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = toBuf(c.id); });
    var cred = await navigator.credentials.get({ publicKey: pk });
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toB64url(cred.response.authenticatorData),
        clientDataJSON: toB64url(cred.response.clientDataJSON),
        signature: toB64url(cred.response.signature),
        userHandle: cred.response.userHandle ? toB64url(cred.response.userHandle) : null
      },
      extensions: {}
    };
  }

  async function register(form) {
    var name = form.querySelector('[name=key_name]').value;
    var options = await call('POST', '/api/v1/me/webauthn/register', { name: name });
    var pk = options.publicKey;
    pk.challenge = toBuf(pk.challenge);
    pk.user.id = toBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = toBuf(c.id); });
    var cred = await navigator.credentials.create({ publicKey: pk });
    var done = await call('POST', '/api/v1/me/webauthn/register/finish', {
      credential: {
        id: cred.id,
        rawId: toB64url(cred.rawId),
        type: cred.type,
        response: {
          attestationObject: toB64url(cred.response.attestationObject),
          clientDataJSON: toB64url(cred.response.clientDataJSON)
        },
        extensions: {}
      }
    });
    if (done.recovery_codes) {
      var list = document.getElementById('webauthn-codes');
      done.recovery_codes.forEach(function (c) {
        var li = document.createElement('li');
        var code = document.createElement('code');
        code.textContent = c;
        li.appendChild(code);
        list.appendChild(li);
      });
      document.getElementById('webauthn-codes-box').hidden = false;
    } else {
      location.reload();
    }
  }

  async function signIn(form) {
    var pending = form.querySelector('[name=pending]').value;
    var options = await call('POST', '/api/v1/session/webauthn', { pending: pending });
    var answer = await assertion(options);
    var done = await call('POST', '/api/v1/session/second-factor', { pending: pending, webauthn: answer });
    location.href = done.must_change_password ? '/password'
      : (done.second_factor_enrolment_required ? '/security' : '/');
  }

  async function remove(button) {
    var url = '/api/v1/me/webauthn/' + encodeURIComponent(button.dataset.key);
    try {
      await call('DELETE', url);
    } catch (err) {
      if (err.code !== 'reauthentication_required') { throw err; }
      var options = await call('POST', '/api/v1/session/reauth/webauthn');
      await call('POST', '/api/v1/session/reauth', { webauthn: await assertion(options) });
      await call('DELETE', url);
    }
    location.reload();
  }

  document.addEventListener('DOMContentLoaded', function () {
    var reg = document.getElementById('webauthn-register');
    if (reg) {
      reg.addEventListener('submit', function (e) {
        e.preventDefault();
        register(reg).catch(showError);
      });
    }
    var use = document.getElementById('webauthn-sign-in');
    if (use) {
      use.hidden = false;
      use.addEventListener('click', function (e) {
        e.preventDefault();
        signIn(document.getElementById('second-factor-form')).catch(showError);
      });
    }
    // A settings form that needs a fresh re-authentication: confirm with a
    // key, then send the form as it is (the server checks the re-authentication).
    document.querySelectorAll('button[data-reauth-key]').forEach(function (b) {
      b.addEventListener('click', function (e) {
        e.preventDefault();
        var form = b.closest('form');
        if (!form.reportValidity()) { return; }
        (async function () {
          var options = await call('POST', '/api/v1/session/reauth/webauthn');
          await call('POST', '/api/v1/session/reauth', { webauthn: await assertion(options) });
          form.submit();
        })().catch(showError);
      });
    });
    document.querySelectorAll('button[data-key]').forEach(function (b) {
      b.addEventListener('click', function (e) {
        e.preventDefault();
        remove(b).catch(showError);
      });
    });
  });
}());
