// The subscriber's journey through the portal (/portal/) in a real browser: Playwright
// (playwright-core) drives Debian's Chromium headless.
//
//   sign in (a wrong password first) → home → activate with the PUK (a wrong PUK, two PINs
//   that differ first) → change the PIN → three wrong PINs block it → unblock with the PUK →
//   change the password (two that differ first) → sign in again → the OTP device page with
//   the QR code → sign out; then the same pages in English (the browser's language), with
//   English refusals.
//
// Every page is checked with axe-core (no serious or critical violation) and screenshotted in
// Italian and English, at desktop width and at 375 px, into --out-dir. One browser, one
// context per language (and one with bypassCSP where axe runs, on the very HTML each page
// showed). The last line on stdout is a JSON summary. Run by tests/it/portal.rs.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
for (const k of ['base-url', 'admin-url', 'admin-token', 'outbox', 'out-dir', 'axe']) {
  if (!args[k]) { console.error(`missing --${k}`); process.exit(2); }
}
const BASE = args['base-url'];
const OUT = args['out-dir'];
fs.mkdirSync(OUT, { recursive: true });
// A bound on the whole run: it stops by itself.
setTimeout(() => { console.error('portal_journey: timed out'); process.exit(3); }, 100_000).unref();

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

// The subscriber, as the operator enrols them. (When enrolment moves to the e-mailed setup
// link, this is the one place to change: return the user id and the password chosen there.)
async function enrol() {
  const userId = `journey-${Date.now().toString(36)}`;
  const password = 'Sigillo-Journey-2026!';
  await admin('/admin/v1/users', {
    user_id: userId, password, given_name: 'Mario', surname: 'Rossi',
    fiscal_code: 'RSSMRA80A01H501U', email: 'mario.rossi@example.org', phone: '+393331234567',
    otp_method: 'sms',
  });
  return { userId, password };
}

// The PUK of a new credential, as the subscriber gets it. THE ONE PLACE to change when the
// PUK moves into the encrypted envelope e-mail: today the admin API still returns it.
async function pukOf(created) {
  check(/^\d{8}$/.test(created?.activation?.puk ?? ''), 'a PUK', created);
  return created.activation.puk;
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
  },
};

async function main() {
  const { userId, password } = await enrol();
  const created = await admin(`/admin/v1/users/${userId}/credentials`, { key_algo: 'ec-p256', purpose: 'signing' });
  const credentialId = created.credential_id;
  const puk = await pukOf(created);

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
    await signIn(enPage, en, newPassword);
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
    await enContext.close();

    check(problems.length === 0, 'no CSP violation or script error', problems);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(summary));
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
