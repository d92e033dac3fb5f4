// The subscriber's journey through the portal (/portal/) in a real browser: Playwright
// (playwright-core) drives Debian's Chromium headless.
//
//   the setup e-mail's link (from the SMTP server's Maildir) → the setup page (password and
//   envelope passphrase) → the sealed envelope e-mailed with the credential, decrypted with the
//   passphrase by pypdf (tests/e2e/open_envelope.py) for the PUK → sign in (a wrong password
//   first) → home → activate with the PUK (a wrong PUK, two PINs
//   that differ first) → change the PIN → three wrong PINs block it → unblock with the PUK →
//   change the password (two that differ first) → sign in again → the OTP device page with
//   the QR code → renew with a coupon → sign out, recover the password by the e-mailed link →
//   sign out; then the same pages in English (the browser's language), with English refusals;
//   the authenticator app enrolled from the QR code's key; last the phone is "lost": the
//   emergency code suspends the credential and the subscriber resumes it with the PUK and a
//   new app (a wrong PUK first).
//
// Every page is checked with axe-core (no serious or critical violation) and screenshotted in
// Italian and English, at desktop width and at 375 px, into --out-dir. One browser, one
// context per language (and one with bypassCSP where axe runs, on the very HTML each page
// showed). The last line on stdout is a JSON summary. Run by tests/it/portal.rs.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { chromium } = require('playwright-core');
const maildir = require('./maildir');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
for (const k of ['base-url', 'admin-url', 'admin-token', 'outbox', 'out-dir', 'axe', 'maildir', 'python']) {
  if (!args[k]) { console.error(`missing --${k}`); process.exit(2); }
}
const BASE = args['base-url'];
const OUT = args['out-dir'];
fs.mkdirSync(OUT, { recursive: true });
// A bound on the whole run: it stops by itself.
setTimeout(() => { console.error('portal_journey: timed out'); process.exit(3); }, 150_000).unref();

function check(cond, what, detail) {
  if (!cond) {
    throw new Error(`${what}${detail === undefined ? '' : `: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`}`);
  }
}

async function admin(pathname, body) {
  const res = await fetch(`${args['admin-url']}${pathname}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${args['admin-token']}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = { raw: text }; }
  check(res.status === 201, `admin ${pathname}`, json);
  return json;
}

// The subscriber, as the operator enrols them: identity and contact data only (no password:
// the subscriber chooses it on the setup page the e-mailed link opens).
async function enrol() {
  const userId = `journey-${Date.now().toString(36)}`;
  const email = `${userId}@example.org`;
  await admin('/admin/v1/users', {
    user_id: userId, given_name: 'Mario', surname: 'Rossi',
    fiscal_code: 'RSSMRA80A01H501U', email, phone: '+393331234567', otp_method: 'sms',
  });
  return { userId, email, password: 'Sigillo-Journey-2026!', passphrase: 'una busta ben chiusa 2026' };
}

// The setup link of the e-mail the subscriber got, on this gateway (the test gateway's
// `enrolment.setup_link` names no host of its own: the token is what counts).
async function setupLinkOf(email) {
  const mail = await maildir.waitFor(args.maildir, email, (m) => /\/portal\/setup\?token=/.test(m.text), 'the setup link');
  const token = /\/portal\/setup\?token=([A-Za-z0-9_-]+)/.exec(mail.text)[1];
  return `${BASE}/portal/setup?token=${token}`;
}

// The PUK of a new credential, as the subscriber gets it: the sealed envelope attached to an
// e-mail, opened with the passphrase by pypdf, read off the letter.
async function pukOf(email, passphrase, serial) {
  const mail = await maildir.waitFor(args.maildir, email, (m) => m.attachments.some((a) => a.filename === `busta-${serial}.pdf`), 'the sealed envelope');
  const pdf = mail.attachments.find((a) => a.filename === `busta-${serial}.pdf`).content;
  const open = (pass) => {
    try {
      return { ok: true, text: execFileSync(args.python, [path.join(__dirname, 'open_envelope.py'), pass], { input: pdf }).toString() };
    } catch (e) {
      return { ok: false, status: e.status };
    }
  };
  check(open('not the passphrase').status === 3, 'a wrong passphrase does not open the envelope');
  const opened = open(passphrase);
  check(opened.ok, 'the passphrase opens the envelope', opened);
  const text = opened.text.replace(/\s+/g, ' ');
  check(text.includes(serial), 'the envelope names the serial number', text);
  const puk = /PUK\b[^0-9]*(\d{8})/.exec(text);
  check(puk, 'a PUK in the envelope', text);
  const code = /[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}/.exec(text);
  check(code, 'an emergency code in the envelope', text);
  return { puk: puk[1], emergencyCode: code[0] };
}

// The code an authenticator app shows now for the Base32 `secret` (RFC 6238: HMAC-SHA1,
// 30-second steps, 6 digits), as the subscriber's phone would compute it from the QR code.
function appCode(secret, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bits = [...secret.replace(/=+$/, '').toUpperCase()]
    .map((c) => alphabet.indexOf(c).toString(2).padStart(5, '0')).join('');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 30000)));
  const h = crypto.createHmac('sha1', key).update(counter).digest();
  const o = h[h.length - 1] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1000000).padStart(6, '0');
}

// The newest SMS code of the outbox (the gateway's SMS sink).
function lastOtp() {
  const lines = fs.readFileSync(args.outbox, 'utf8').trim().split('\n');
  return JSON.parse(lines[lines.length - 1]).text.match(/\b\d{6}\b/)[0];
}

const LAUNCH = {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 740 };

// The strings the journey clicks and reads, per language.
const T = {
  it: {
    setupPassword: 'Nuova password', setupPassword2: 'Ripeti la password', passphrase: 'Passphrase',
    passphrase2: 'Ripeti la passphrase', setupSubmit: 'Attiva',
    passphrasesDiffer: 'Le due passphrase non coincidono.',
    setupDone: 'Fatto: la password e la passphrase sono impostate. Le buste cifrate delle tue credenziali arriveranno per e-mail.',
    userId: 'Codice utente', password: 'Password', signIn: 'Accedi', sms: 'Inviami un SMS',
    puk: 'PUK', currentPin: 'PIN attuale', newPin: 'Nuovo PIN', newPin2: 'Ripeti il nuovo PIN',
    otp: 'Codice OTP', confirm: 'Conferma', activate: 'Attiva', changePin: 'Cambia PIN',
    unblock: 'Sblocca con il PUK', changePassword: 'Cambia password',
    currentPassword: 'Password attuale', newPassword: 'Nuova password',
    newPassword2: 'Ripeti la nuova password', device: 'Cambia dispositivo OTP',
    useApp: "Usa un'app", signOut: 'Esci',
    wrongLogin: 'Codice utente o password non corretti.',
    wrongPuk: 'PUK non corretto. Tentativi rimasti:',
    pinsDiffer: 'I due nuovi PIN non coincidono.',
    wrongPin: 'PIN non corretto. Tentativi rimasti:',
    blocked: 'PIN non corretto: il PIN ora è bloccato. Sbloccalo con il PUK.',
    passwordsDiffer: 'Le due nuove password non coincidono.',
  },
  en: {
    userId: 'User ID', password: 'Password', signIn: 'Sign in', sms: 'Send me an SMS',
    currentPin: 'Current PIN', newPin: 'New PIN', newPin2: 'Repeat the new PIN', otp: 'OTP code',
    confirm: 'Confirm', changePin: 'Change PIN',
    wrongLogin: 'Wrong user ID or password.',
    wrongPin: 'Wrong PIN. Attempts left:',
    passwordsDiffer: 'The two new passwords do not match.',
    wrongPassword: 'The current password is wrong.',
    wrongPuk: 'Wrong PUK. Attempts left:', resume: 'Resume',
    resumed: 'Certificates resumed and the new OTP device is active: sign in again.',
  },
};

async function main() {
  const { userId, email, password, passphrase } = await enrol();
  // Valid 30 days: inside the renewal window, so the journey renews it too.
  const created = await admin(`/admin/v1/users/${userId}/credentials`, { key_algo: 'ec-p256', purpose: 'signing', validity_days: 30 });
  check(created.envelope === 'awaiting_setup' && created.activation === undefined, 'the operator gets no PUK', created);
  const credentialId = created.credential_id;

  const browser = await chromium.launch(LAUNCH);
  const axeContext = await browser.newContext({ bypassCSP: true, viewport: DESKTOP });
  const axePage = await axeContext.newPage();
  const screenshots = [];
  const audited = [];
  const problems = [];

  // axe-core on exactly the HTML `page` shows (served again at its URL in the bypassCSP
  // context, where the injected script may run); fails on a serious or critical violation.
  const axe = async (page, name) => {
    const html = await page.content();
    const url = page.url();
    await axePage.route(url, (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: html }));
    await axePage.goto(url);
    await axePage.unroute(url);
    await axePage.addScriptTag({ path: args.axe });
    const result = await axePage.evaluate(async () => {
      // eslint-disable-next-line no-undef
      const r = await axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
    });
    const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    check(bad.length === 0, `axe: serious or critical violations on ${name}`, bad);
    audited.push({ page: name, minor: result.length });
  };

  // A page in its state now: axe, then a screenshot at desktop width and one at 375 px.
  const capture = async (page, lang, name) => {
    await axe(page, `${name}-${lang}`);
    for (const [size, viewport] of [['desktop', DESKTOP], ['375', PHONE]]) {
      await page.setViewportSize(viewport);
      const file = path.join(OUT, `${String(screenshots.length + 1).padStart(2, '0')}-${name}-${lang}-${size}.png`);
      await page.screenshot({ path: file, fullPage: true });
      screenshots.push(file);
    }
    await page.setViewportSize(DESKTOP);
  };

  const watch = (page) => {
    // CSP violations and script errors (a refused form answers 4xx, which Chromium logs too).
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(String(e)));
  };
  const alertText = async (page) => (await page.getByRole('alert').textContent()).trim();
  const label = (page, text) => page.getByLabel(text, { exact: true });
  const button = (page, text) => page.getByRole('button', { name: text, exact: true });
  const link = (page, text) => page.getByRole('link', { name: text, exact: true });
  // Clicks what submits a form or follows a link, and waits for the page it leads to.
  const go = async (page, target) => {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), target.click()]);
  };

  const signIn = async (page, t, pass) => {
    await label(page, t.userId).fill(userId);
    await label(page, t.password).fill(pass);
    await go(page, button(page, t.signIn));
  };
  // "Send me an SMS", then the code from the outbox.
  const smsCode = async (page, t) => {
    await go(page, button(page, t.sms));
    await page.getByRole('status').waitFor();
    return lastOtp();
  };
  const pinForm = async (page, t, first, firstValue, newPin, newPin2) => {
    const otp = await smsCode(page, t);
    await label(page, first).fill(firstValue);
    await label(page, t.newPin).fill(newPin);
    await label(page, t.newPin2).fill(newPin2);
    await label(page, t.otp).fill(otp);
    await go(page, button(page, t.confirm));
  };
  const onHome = async (page) => {
    await page.waitForURL((u) => new URL(u).pathname === '/portal/');
  };

  const summary = { screenshots, audited, steps: [] };
  const step = (s) => summary.steps.push(s);
  try {
    // ---- Italian (the default) ----
    const it = T.it;
    const itContext = await browser.newContext({ locale: 'it-IT', viewport: DESKTOP });
    const page = await itContext.newPage();
    watch(page);

    // Setup from the e-mailed link: two passphrases that differ first, then the password and
    // the passphrase; the envelope of the credential the operator created meanwhile follows.
    await page.goto(await setupLinkOf(email));
    await capture(page, 'it', 'setup');
    const setupForm = async (passphrase2) => {
      await label(page, it.setupPassword).fill(password);
      await label(page, it.setupPassword2).fill(password);
      await label(page, it.passphrase).fill(passphrase);
      await label(page, it.passphrase2).fill(passphrase2);
      await go(page, button(page, it.setupSubmit));
    };
    await setupForm(`${passphrase} x`);
    check(await alertText(page) === it.passphrasesDiffer, 'passphrases differ (it)', await alertText(page));
    await capture(page, 'it', 'setup-refused');
    await setupForm(passphrase);
    check((await page.getByRole('status').textContent()).trim() === it.setupDone, 'setup done (it)');
    await capture(page, 'it', 'setup-done');
    const { puk, emergencyCode } = await pukOf(email, passphrase, created.serial_number);
    step('set up, envelope opened');

    await page.goto(`${BASE}/portal/`);
    check(new URL(page.url()).pathname === '/portal/login', 'signed out: the sign-in page', page.url());
    check(await page.getAttribute('html', 'lang') === 'it', 'Italian by default');
    await capture(page, 'it', 'login');
    await signIn(page, it, 'Wrong-Password-1!');
    check(await alertText(page) === it.wrongLogin, 'wrong password (it)', await alertText(page));
    await capture(page, 'it', 'login-refused');
    await signIn(page, it, password);
    await onHome(page);
    check((await page.content()).includes('data-status="inactive"'), 'an inactive card');
    await capture(page, 'it', 'home');
    step('signed in');

    // Activation: a wrong PUK, two PINs that differ, then right.
    const pins = ['24681357', '97531864', '11335577'];
    const wrongPuk = puk === '00000000' ? '11111111' : '00000000';
    await go(page, link(page, it.activate));
    await capture(page, 'it', 'activate');
    await pinForm(page, it, it.puk, wrongPuk, pins[0], pins[0]);
    check((await alertText(page)).startsWith(it.wrongPuk), 'wrong PUK (it)', await alertText(page));
    await capture(page, 'it', 'activate-refused');
    await label(page, it.puk).fill(puk);
    await label(page, it.newPin).fill(pins[0]);
    await label(page, it.newPin2).fill(pins[1]);
    await label(page, it.otp).fill('123456');
    await go(page, button(page, it.confirm));
    check(await alertText(page) === it.pinsDiffer, 'PINs differ (it)', await alertText(page));
    await pinForm(page, it, it.puk, puk, pins[0], pins[0]);
    await onHome(page);
    check((await page.content()).includes('data-status="active"'), 'active after activation');
    await capture(page, 'it', 'home-activated');
    step('activated with the PUK');

    // PIN change.
    await go(page, link(page, it.changePin));
    await capture(page, 'it', 'pin');
    await pinForm(page, it, it.currentPin, pins[0], pins[1], pins[1]);
    await onHome(page);
    step('PIN changed');

    // Three wrong PINs on the PIN change page: the domain blocks the PIN.
    await go(page, link(page, it.changePin));
    for (let i = 1; i <= 3; i++) {
      await pinForm(page, it, it.currentPin, '00000000', pins[2], pins[2]);
      const text = await alertText(page);
      check(i < 3 ? text.startsWith(it.wrongPin) : text === it.blocked, `wrong PIN ${i} (it)`, text);
    }
    await capture(page, 'it', 'pin-blocked');
    await page.goto(`${BASE}/portal/`);
    check((await page.content()).includes('data-status="pin_blocked"'), 'PIN-blocked card');
    await capture(page, 'it', 'home-pin-blocked');
    step('PIN blocked by three wrong PINs');

    // Unblock with the PUK.
    await go(page, link(page, it.unblock));
    await capture(page, 'it', 'unblock');
    await pinForm(page, it, it.puk, puk, pins[2], pins[2]);
    await onHome(page);
    check((await page.content()).includes('data-status="active"'), 'active after unblock');
    step('unblocked with the PUK');

    // Password change: two that differ, then right; every session ends.
    const newPassword = 'Nuova-Parola-2027!';
    let current = newPassword;
    await go(page, link(page, it.changePassword));
    await capture(page, 'it', 'password');
    const passwordForm = async (again) => {
      await label(page, it.currentPassword).fill(password);
      await label(page, it.newPassword).fill(newPassword);
      await label(page, it.newPassword2).fill(again);
      await go(page, button(page, it.confirm));
    };
    await passwordForm('Nuova-Parola-2028!');
    check(await alertText(page) === it.passwordsDiffer, 'passwords differ (it)', await alertText(page));
    await capture(page, 'it', 'password-refused');
    await passwordForm(newPassword);
    check(new URL(page.url()).pathname === '/portal/login', 'signed out after the change', page.url());
    await capture(page, 'it', 'login-after-password');
    await signIn(page, it, newPassword);
    await onHome(page);
    step('password changed');

    // The OTP device page, up to the QR code (the change itself is tests/it/portal.rs's).
    await go(page, link(page, it.device));
    await capture(page, 'it', 'otp-device');
    await page.locator('#app-password').fill(newPassword);
    await go(page, button(page, it.useApp));
    check(await page.locator('img.qr').isVisible(), 'the QR code');
    await capture(page, 'it', 'otp-device-qr');

    // Renewal with a coupon: "Confermo" the identity data, coupon, PIN, the SMS code; the page
    // shows the new expiry date.
    const coupon = (await admin('/admin/v1/coupons', { count: 1 })).coupons[0];
    await page.goto(`${BASE}/portal/credentials/${credentialId}/renew`);
    await capture(page, 'it', 'renew');
    await go(page, page.locator('form.sms button'));
    const renewOtp = lastOtp();
    await page.locator('#confirm_identity').check();
    await page.locator('#coupon').fill(coupon);
    await page.locator('#pin').fill(pins[2]);
    await page.locator('#otp').fill(renewOtp);
    await go(page, page.locator('button[value=renew]'));
    check(await page.locator('#new-expiry').isVisible(), 'the new expiry date', await page.content());
    const newExpiry = new Date(await page.locator('#new-expiry').getAttribute('datetime'));
    check(newExpiry - Date.now() > 60 * 86400 * 1000, 'renewed beyond the old 30 days', newExpiry);
    await capture(page, 'it', 'renew-done');
    step('renewed with a coupon');

    // "Non riesco ad accedere": signed out, the user id → the e-mailed link → the SMS code and a
    // new password; then the recovered password signs in.
    await page.goto(`${BASE}/portal/`);
    await go(page, button(page, it.signOut));
    await page.goto(`${BASE}/portal/recovery`);
    await capture(page, 'it', 'recovery');
    await page.locator('#user_id').fill(userId);
    await go(page, page.locator('button[value=ask]'));
    check(await page.locator('#recovery-asked').isVisible(), 'recovery asked');
    const recoveryMail = await maildir.waitFor(args.maildir, email, (m) => /\/portal\/recovery\?token=/.test(m.text), 'the recovery link');
    const recoveryToken = /\/portal\/recovery\?token=([A-Za-z0-9_-]+)/.exec(recoveryMail.text)[1];
    await page.goto(`${BASE}/portal/recovery?token=${recoveryToken}`);
    await capture(page, 'it', 'recovery-link');
    await go(page, page.locator('button[value=sms]'));
    const recoveryOtp = lastOtp();
    current = 'Ritrovata-Chiave-2027?';
    await page.locator('#otp').fill(recoveryOtp);
    await page.locator('#new_password').fill(current);
    await page.locator('#new_password_again').fill(current);
    await go(page, page.locator('button[value=complete]'));
    check(await page.locator('#recovery-done').isVisible(), 'recovered', await page.content());
    await capture(page, 'it', 'recovery-done');
    await page.goto(`${BASE}/portal/login`);
    await signIn(page, it, current);
    await onHome(page);
    step('password recovered by the e-mailed link');

    await page.goto(`${BASE}/portal/`);
    await go(page, button(page, it.signOut));
    check(new URL(page.url()).pathname === '/portal/login', 'signed out', page.url());
    await page.goto(`${BASE}/portal/`);
    check(new URL(page.url()).pathname === '/portal/login', 'the session is over', page.url());
    step('signed out');
    await itContext.close();

    // ---- English (the browser's language) ----
    const en = T.en;
    const enContext = await browser.newContext({ locale: 'en-GB', viewport: DESKTOP });
    const enPage = await enContext.newPage();
    watch(enPage);
    await enPage.goto(`${BASE}/portal/login`);
    check(await enPage.getAttribute('html', 'lang') === 'en', 'English from Accept-Language');
    await capture(enPage, 'en', 'login');
    await signIn(enPage, en, password);
    check(await alertText(enPage) === en.wrongLogin, 'the old password (en)', await alertText(enPage));
    await capture(enPage, 'en', 'login-refused');
    await signIn(enPage, en, current);
    await onHome(enPage);
    await capture(enPage, 'en', 'home');
    await go(enPage, link(enPage, en.changePin));
    await capture(enPage, 'en', 'pin');
    await pinForm(enPage, en, en.currentPin, '00000000', pins[0], pins[0]);
    check((await alertText(enPage)).startsWith(en.wrongPin), 'wrong PIN (en)', await alertText(enPage));
    await capture(enPage, 'en', 'pin-refused');
    for (const [suffix, name] of [['activate', 'activate'], ['unblock', 'unblock']]) {
      await enPage.goto(`${BASE}/portal/credentials/${credentialId}/${suffix}`);
      await capture(enPage, 'en', name);
    }
    await enPage.goto(`${BASE}/portal/password`);
    await capture(enPage, 'en', 'password');
    await label(enPage, 'Current password').fill('Wrong-Password-1!');
    await label(enPage, 'New password').fill('Another-Password-9?');
    await label(enPage, 'Repeat the new password').fill('Another-Password-9?');
    await go(enPage, button(enPage, en.confirm));
    check(await alertText(enPage) === en.wrongPassword, 'wrong password (en)', await alertText(enPage));
    await capture(enPage, 'en', 'password-refused');
    await enPage.goto(`${BASE}/portal/otp/device`);
    await capture(enPage, 'en', 'otp-device');
    // A form from nowhere (no CSRF token): refused, readable.
    const forged = await enPage.request.post(`${BASE}/portal/password`, { form: { password: newPassword, new_password: 'X-1234567a!', new_password2: 'X-1234567a!' } });
    check(forged.status() === 403, 'a form without its CSRF token', forged.status());
    step('English pages and refusals');

    // The authenticator app from the QR code's key: the app's code and the current factor (the
    // SMS the start sent); then the OTP comes from the app and every session has ended.
    await enPage.goto(`${BASE}/portal/otp/device`);
    await enPage.locator('#app-password').fill(current);
    await go(enPage, enPage.locator('button[value=app_start]'));
    const secret = (await enPage.locator('#totp-secret').textContent()).trim();
    const currentFactor = lastOtp();
    await enPage.locator('#code').fill(appCode(secret));
    await enPage.locator('#otp').fill(currentFactor);
    await go(enPage, enPage.locator('button[value=app_confirm]'));
    check(new URL(enPage.url()).pathname === '/portal/login', 'signed out after the device change', enPage.url());
    await capture(enPage, 'en', 'login-after-device');
    await signIn(enPage, en, current);
    await onHome(enPage);
    await go(enPage, link(enPage, en.changePin));
    check(await button(enPage, en.sms).count() === 0, 'no SMS button any more: the app gives the codes');
    step('authenticator app enrolled from the QR code');

    // The phone is lost: the emergency code from the envelope suspends the credential; the
    // card offers the resume, which stages a new app and takes the PUK instead of the old app.
    await enPage.goto(`${BASE}/portal/emergency`);
    await enPage.locator('#user_id').fill(userId);
    await enPage.locator('#emergency_code').fill(emergencyCode);
    await go(enPage, enPage.locator('button[type=submit]'));
    await enPage.goto(`${BASE}/portal/`);
    check((await enPage.content()).includes('data-status="suspended"'), 'a suspended card');
    await capture(enPage, 'en', 'home-suspended');
    await go(enPage, link(enPage, en.resume));
    await capture(enPage, 'en', 'resume');
    await enPage.locator('#app-password').fill(current);
    await go(enPage, enPage.locator('button[value=app_start]'));
    const newSecret = (await enPage.locator('#totp-secret').textContent()).trim();
    check(newSecret !== secret, 'a new app secret');
    await capture(enPage, 'en', 'resume-app');
    await enPage.locator('#code').fill(appCode(newSecret));
    await enPage.locator('#puk').fill(wrongPuk);
    await go(enPage, enPage.locator('button[value=app_confirm]'));
    check((await alertText(enPage)).startsWith(en.wrongPuk), 'wrong PUK (en)', await alertText(enPage));
    await capture(enPage, 'en', 'resume-refused');
    await enPage.locator('#code').fill(appCode(newSecret));
    await enPage.locator('#puk').fill(puk);
    await go(enPage, enPage.locator('button[value=app_confirm]'));
    check(new URL(enPage.url()).pathname === '/portal/login', 'signed out after the resume', enPage.url());
    check((await enPage.getByRole('status').textContent()).trim() === en.resumed, 'resumed (en)');
    await signIn(enPage, en, current);
    await onHome(enPage);
    check((await enPage.content()).includes('data-status="active"'), 'the card is active again');
    step('resumed after the emergency suspension with the PUK and a new app');
    await enContext.close();

    check(problems.length === 0, 'no CSP violation or script error', problems);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(summary));
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
