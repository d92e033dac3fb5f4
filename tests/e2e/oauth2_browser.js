// The CSC v2 OAuth2 flow in a real browser: Playwright (playwright-core) drives Debian's
// Chromium headless through sigillo's pages, and an OAuth2 client written here from RFC 6749,
// 7636 (PKCE), 8414 (discovery), 9126 (PAR) and 9396 (authorization details) and CSC v2 §8
// does the rest with plain HTTP:
//
//   discovery → PAR → authorize page (user id, password) → token (service) → credentials/list
//   → credentials/info → PAR (scope=credential) → page (PIN, "send me an SMS", OTP) → token
//   (credential) → signHash with no SAD → every signature verified with openssl; then the same
//   with rich authorization details.
//
// One browser launch; every page is screenshotted into --out-dir. The last line on stdout is
// a JSON summary. Run by tests/it/oauth2_browser.rs (which creates the user and credential).
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { isDeepStrictEqual } = require('node:util');
const { chromium } = require('playwright-core');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
for (const k of ['base-url', 'admin-url', 'admin-token', 'user', 'password', 'pin', 'credential-id', 'outbox', 'out-dir']) {
  if (!args[k]) { console.error(`missing --${k}`); process.exit(2); }
}
const OUT = args['out-dir'];
fs.mkdirSync(OUT, { recursive: true });
// A bound on the whole run: it stops by itself.
setTimeout(() => { console.error('oauth2_browser: timed out'); process.exit(3); }, 90_000).unref();

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const sha256 = (data) => crypto.createHash('sha256').update(data).digest();
const SHA256_OID = '2.16.840.1.101.3.4.2.1';
const ES256 = '1.2.840.10045.4.3.2';

function check(cond, what, detail) {
  if (!cond) {
    throw new Error(`${what}${detail === undefined ? '' : `: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`}`);
  }
}

async function json(res) {
  const text = await res.text();
  try { return JSON.parse(text); } catch { return { raw: text }; }
}

// The redirect URI: a loopback listener that takes the authorization response.
function callbackServer() {
  let waiting = null;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    // Only the redirect URI answers: the browser also asks this origin for /favicon.ico, and
    // that request, arriving late, must not pass for the next authorization response.
    if (url.pathname !== '/callback') { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('back at the client');
    if (waiting) { const w = waiting; waiting = null; w(url.searchParams); }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    server,
    uri: `http://127.0.0.1:${server.address().port}/callback`,
    next: () => new Promise((r) => { waiting = r; }),
  })));
}

async function main() {
  const base = args['base-url'];
  const callback = await callbackServer();

  // The operator registers the client (confidential: it authenticates with HTTP Basic).
  const clientId = `browser-${crypto.randomBytes(4).toString('hex')}`;
  let res = await fetch(`${args['admin-url']}/admin/v1/oauth2/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${args['admin-token']}`, 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: clientId, client_type: 'confidential', redirect_uris: [callback.uri], scopes: ['service', 'credential'] }),
  });
  const registered = await json(res);
  check(res.status === 201, 'client registration', registered);
  const basic = 'Basic ' + Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(registered.client_secret)}`).toString('base64');

  // RFC 8414 discovery.
  res = await fetch(`${base}/.well-known/oauth-authorization-server`);
  const meta = await json(res);
  check(res.status === 200 && meta.issuer === base, 'discovery', meta);
  check(meta.code_challenge_methods_supported.includes('S256'), 'S256 offered', meta);

  const form = async (url, fields) => {
    const r = await fetch(url, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
    return { status: r.status, body: await json(r) };
  };
  const csc = async (method, token, body) => {
    const r = await fetch(`${base}/csc/v2/${method}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: r.status, body: await json(r) };
  };

  const userDataDir = fs.mkdtempSync(path.join(OUT, 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 390, height: 844 },
    locale: 'it-IT',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const screenshots = [];
  const shot = async (page, name) => {
    const file = path.join(OUT, `${String(screenshots.length + 1).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    screenshots.push(file);
  };
  const summary = { screenshots, signed: 0, verified: 0 };
  try {
    const page = context.pages()[0] || await context.newPage();
    const violations = [];
    // CSP violations and script errors (a refused form answers 4xx, which Chromium logs too).
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) violations.push(m.text()); });
    page.on('pageerror', (e) => violations.push(String(e)));

    // One authorization: PAR → the page → the code at the callback → the token.
    const authorize = async (params, onPage) => {
      const verifier = b64url(crypto.randomBytes(32));
      const state = b64url(crypto.randomBytes(8));
      const par = await form(meta.pushed_authorization_request_endpoint, {
        response_type: 'code', redirect_uri: callback.uri, state,
        code_challenge: b64url(sha256(verifier)), code_challenge_method: 'S256', ...params,
      });
      check(par.status === 201, 'PAR', par);
      const url = `${meta.authorization_endpoint}?${new URLSearchParams({ client_id: clientId, request_uri: par.body.request_uri })}`;
      const back = callback.next();
      await page.goto(url);
      await onPage();
      const query = await back;
      check(query.get('state') === state && query.get('iss') === meta.issuer, 'state and iss', Object.fromEntries(query));
      check(query.get('code'), 'a code', Object.fromEntries(query));
      const token = await form(meta.token_endpoint, {
        grant_type: 'authorization_code', code: query.get('code'), redirect_uri: callback.uri, code_verifier: verifier,
      });
      check(token.status === 200, 'token', token);
      return token.body;
    };

    // scope=service: user id and password on the page.
    const service = await authorize({ scope: 'service' }, async () => {
      check(await page.getAttribute('html', 'lang') === 'it', 'Italian by default');
      await shot(page, 'login-it');
      await page.click('a[hreflang="en"]');
      check(await page.getAttribute('html', 'lang') === 'en', 'English on request');
      await shot(page, 'login-en');
      await page.getByLabel('User ID').fill(args.user);
      await page.getByLabel('Password').fill(args.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
    });
    check(service.scope === 'service', 'service scope', service);
    const list = await csc('credentials/list', service.access_token, {});
    check(list.status === 200 && list.body.credentialIDs.includes(args['credential-id']), 'credentials/list', list);
    const info = await csc('credentials/info', service.access_token, { credentialID: args['credential-id'], certificates: 'single' });
    check(info.status === 200, 'credentials/info', info);
    const certPem = `-----BEGIN CERTIFICATE-----\n${info.body.cert.certificates[0].match(/.{1,64}/g).join('\n')}\n-----END CERTIFICATE-----\n`;
    const certFile = path.join(OUT, 'signer.pem');
    fs.writeFileSync(certFile, certPem);
    const pubFile = path.join(OUT, 'signer-pub.pem');
    execFileSync('openssl', ['x509', '-in', certFile, '-pubkey', '-noout', '-out', pubFile]);

    // The PIN/OTP page: "send me an SMS", read the code from the SMS outbox, authorise.
    const lastOtp = () => {
      const lines = fs.readFileSync(args.outbox, 'utf8').trim().split('\n');
      return JSON.parse(lines[lines.length - 1]).text.match(/\b\d{6}\b/)[0];
    };
    const approve = (name, expectTexts, wrongPinFirst) => async () => {
      for (const t of expectTexts) {
        check((await page.content()).includes(t), `the page shows ${t}`);
      }
      await shot(page, `${name}-consent`);
      if (wrongPinFirst) {
        // A wrong PIN is shown on the page, with the attempts left.
        await page.getByRole('button', { name: 'Inviami un SMS' }).click();
        await page.getByRole('status').waitFor();
        const wrong = String((Number(args.pin) + 1) % 100000000).padStart(8, '0');
        await page.getByLabel('PIN di firma').fill(wrong);
        await page.getByLabel('Codice OTP').fill(lastOtp());
        await page.getByRole('button', { name: 'Autorizza' }).click();
        const alert = await page.getByRole('alert').textContent();
        check(alert.includes('PIN non corretto'), 'wrong PIN shown', alert);
        await shot(page, `${name}-wrong-pin`);
      }
      await page.getByRole('button', { name: 'Inviami un SMS' }).click();
      await page.getByRole('status').waitFor();
      await shot(page, `${name}-sms-sent`);
      const otp = lastOtp();
      await page.getByLabel('PIN di firma').fill(args.pin);
      await page.getByLabel('Codice OTP').fill(otp);
      await page.getByRole('button', { name: 'Autorizza' }).click();
    };

    // signHash with the credential token and no SAD; each signature checked by openssl.
    const signAndVerify = async (token, docs) => {
      const hashes = docs.map((d) => sha256(d).toString('base64'));
      const signed = await csc('signatures/signHash', token, {
        credentialID: args['credential-id'], hashes, hashAlgorithmOID: SHA256_OID, signAlgo: ES256,
      });
      check(signed.status === 200 && signed.body.signatures.length === docs.length, 'signHash with no SAD', signed);
      summary.signed += docs.length;
      signed.body.signatures.forEach((sig, i) => {
        const doc = path.join(OUT, `doc-${summary.verified}.bin`);
        const sigFile = `${doc}.sig`;
        fs.writeFileSync(doc, docs[i]);
        fs.writeFileSync(sigFile, Buffer.from(sig, 'base64'));
        const out = execFileSync('openssl', ['dgst', '-sha256', '-verify', pubFile, '-signature', sigFile, doc]).toString();
        check(out.includes('Verified OK'), 'openssl verifies', out);
        summary.verified += 1;
      });
      const again = await csc('signatures/signHash', token, {
        credentialID: args['credential-id'], hashes: hashes.slice(0, 1), hashAlgorithmOID: SHA256_OID, signAlgo: ES256,
      });
      check(again.status === 400, 'a spent authorisation signs nothing more', again);
    };

    // scope=credential with base64url hashes, comma separated.
    const docs = [Buffer.from('contratto di prova'), Buffer.from('allegato di prova')];
    const credential = await authorize({
      scope: 'credential', credentialID: args['credential-id'], numSignatures: String(docs.length),
      hashes: docs.map((d) => b64url(sha256(d))).join(','), hashAlgorithmOID: SHA256_OID,
    }, approve('credential', [args['credential-id']], true));
    check(credential.scope === 'credential', 'credential scope', credential);
    await signAndVerify(credential.access_token, docs);

    // RFC 9396 authorization details, with the documents' labels shown on the page.
    const richDocs = [Buffer.from('Contratto di locazione'), Buffer.from('Informativa privacy')];
    const details = [{
      type: 'https://cloudsignatureconsortium.org/2025/credential',
      credentialID: args['credential-id'], numSignatures: richDocs.length, hashAlgorithmOID: SHA256_OID,
      documentDigests: [
        { hash: sha256(richDocs[0]).toString('base64'), label: 'Contratto di locazione.pdf' },
        { hash: sha256(richDocs[1]).toString('base64'), label: 'Informativa privacy.pdf' },
      ],
    }];
    const rich = await authorize({ authorization_details: JSON.stringify(details) },
      approve('details', ['Contratto di locazione.pdf', 'Informativa privacy.pdf']));
    check(isDeepStrictEqual(rich.authorization_details, details), 'authorization_details echoed', rich);
    await signAndVerify(rich.access_token, richDocs);
    check(violations.length === 0, 'no CSP violation or script error', violations);
  } finally {
    await context.close();
    callback.server.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(summary));
}

main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
