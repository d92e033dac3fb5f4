// tests/load/lib.js — shared helpers of the k6 scenarios (flow, smoke, soak, spike).
//
// Configuration (k6 `-e NAME=value` or the process environment, e.g. after
// `set -a; . .dev/env; set +a`):
//   BASE_URL     public listener   (default $SIGILLO_PUBLIC_URL, else http://127.0.0.1:8080)
//   SUBSCRIBERS  the JSON file of `sigillo-bench provision` (required): the subscribers to
//                sign as, each with an active ec-p256 credential, its PIN and its TOTP app
//
// Subscribers are enrolled before k6 starts, the way a real one is (setup e-mail, password
// and envelope passphrase, app enrolment, the PUK from the sealed envelope, activation): k6
// cannot read a Maildir or decrypt a PDF, and the flow is written once, in
// src/bin/sigillo-bench/provision.rs. For example, against scripts/dev's stack:
//   target/debug/sigillo-bench provision --users 50 --prefix k6.flow.$(date +%s) \
//     --out /tmp/k6-users.json   (BENCH_PUBLIC_URL, BENCH_ADMIN_URL, BENCH_ADMIN_TOKEN, BENCH_MAILDIR)
//
// Why TOTP and not SMS: k6 reads files only in the init context (open()), so VU code can
// never see an OTP that the gateway appends to the outbox later. The subscribers have
// `otp_method: "totp"`, and the codes are computed in JS (RFC 6238 below).
//
// TOTP budget: the gateway accepts a step only if it is LATER than the last step it accepted
// for that user, and only within ±1 step of now. So a user gets at most one authorization per
// 30 s step, plus one "borrowed" from the next step. Every user here belongs to exactly one
// VU (or one flow iteration) and remembers its last used step (`last_step`, from the
// provisioner's file at first), so no two requests ever race for a user's step.
//
// Targets are loopback only: any other host is refused when the script loads.

import http from 'k6/http';
import { check, sleep } from 'k6';
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import exec from 'k6/execution';
import { Counter, Trend } from 'k6/metrics';

// ---------------------------------------------------------------------------------------
// Configuration

function env(name, fallbackName, dflt) {
  const v = __ENV[name];
  if (v !== undefined && v !== '') return v;
  const f = fallbackName ? __ENV[fallbackName] : undefined;
  if (f !== undefined && f !== '') return f;
  return dflt;
}

/** Integer env var with a default; refuses garbage. */
export function intEnv(name, dflt) {
  const raw = __ENV[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${raw}: a non-negative integer expected`);
  return n;
}

function stripSlash(u) {
  return u.replace(/\/+$/, '');
}

/** Refuses any target that is not on this machine's loopback. */
function loopbackOnly(name, url) {
  const m = /^https?:\/\/(\[[^\]]*\]|[^/:?#]+)/i.exec(url);
  const host = m ? m[1].toLowerCase() : '';
  const ok = host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  if (!ok) throw new Error(`${name}=${url}: load tests target loopback only (127.0.0.0/8, localhost, [::1])`);
  return url;
}

export const cfg = {
  baseUrl: loopbackOnly('BASE_URL', stripSlash(env('BASE_URL', 'SIGILLO_PUBLIC_URL', 'http://127.0.0.1:8080'))),
  subscribers: env('SUBSCRIBERS', null, ''),
};

// The provisioner's subscribers, read in the init context (the only place open() works).
const provisioned = cfg.subscribers ? JSON.parse(open(cfg.subscribers)).subscribers : null;

export const SHA256_OID = '2.16.840.1.101.3.4.2.1';
export const ECDSA_SHA256_OID = '1.2.840.10045.4.3.2';

// ---------------------------------------------------------------------------------------
// Metrics

/** Signatures returned by signHash (its rate is the signing throughput). */
export const signaturesMade = new Counter('signatures');
/** SADs issued by credentials/authorize during the run (setup included). */
export const sadsIssued = new Counter('sad_authorizations');
/** Time a VU waited for a fresh TOTP step because all its users had used theirs. */
export const totpWait = new Trend('totp_wait', true);
/** 503 answers (HSM queue full / unavailable); they are errors, counted here too. */
export const unavailable = new Counter('http_503');

// ---------------------------------------------------------------------------------------
// TOTP (RFC 4648 base32, RFC 4226 HOTP, RFC 6238 TOTP)

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Base32 (any case, padding and spaces ignored) → ArrayBuffer. */
export function base32Decode(text) {
  const clean = text.toUpperCase().replace(/[=\s]/g, '');
  const out = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const idx = B32.indexOf(ch);
    if (idx < 0) throw new Error(`invalid base32 character '${ch}'`);
    value = (value << 5) | idx;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return new Uint8Array(out).buffer;
}

/** HOTP value of `counter` (a non-negative integer < 2^53) under `key` (ArrayBuffer). */
export function hotp(key, counter, digits = 6, algorithm = 'sha1') {
  const msg = new Uint8Array(8);
  let c = counter;
  for (let i = 7; i >= 0; i--) {
    msg[i] = c % 256;
    c = Math.floor(c / 256);
  }
  const hex = crypto.hmac(algorithm, key, msg.buffer, 'hex');
  const bytes = [];
  for (let i = 0; i < hex.length; i += 2) bytes.push(parseInt(hex.substr(i, 2), 16));
  const offset = bytes[bytes.length - 1] & 0x0f;
  const bin =
    ((bytes[offset] & 0x7f) * 0x1000000) +
    (bytes[offset + 1] << 16) +
    (bytes[offset + 2] << 8) +
    bytes[offset + 3];
  return String(bin % Math.pow(10, digits)).padStart(digits, '0');
}

/** Parses an otpauth://totp/ URI → {secret (base32), digits, period, algorithm}. */
export function parseOtpauth(uri) {
  const q = uri.indexOf('?');
  if (!uri.startsWith('otpauth://totp/') || q < 0) throw new Error(`not a TOTP otpauth URI: ${uri.slice(0, 40)}…`);
  const params = {};
  for (const part of uri.slice(q + 1).split('&')) {
    const eq = part.indexOf('=');
    if (eq > 0) params[decodeURIComponent(part.slice(0, eq)).toLowerCase()] = decodeURIComponent(part.slice(eq + 1));
  }
  if (!params.secret) throw new Error('otpauth URI without a secret');
  return {
    secret: params.secret,
    digits: params.digits ? Number(params.digits) : 6,
    period: params.period ? Number(params.period) : 30,
    algorithm: (params.algorithm || 'SHA1').toLowerCase(),
  };
}

const keyCache = {};

/** The TOTP code of `totp` (from parseOtpauth) for time step `step`. */
export function totpCode(totp, step) {
  let key = keyCache[totp.secret];
  if (!key) key = keyCache[totp.secret] = base32Decode(totp.secret);
  return hotp(key, step, totp.digits, totp.algorithm);
}

/** The current time step. */
export function nowStep(period = 30) {
  return Math.floor(Date.now() / 1000 / period);
}

/**
 * The step `user` may use now: after its last accepted one, and never before now (a code of
 * the previous step could cross out of the ±1 window in flight). null while it has used
 * now+1 already: it must wait for the next step.
 */
export function usableStep(user) {
  const now = nowStep(user.totp.period);
  const step = Math.max(user.last_step + 1, now);
  return step <= now + 1 ? step : null;
}

/** Sleeps until the next TOTP step begins (plus a margin); records the wait. */
export function waitForNextStep(period = 30) {
  const ms = period * 1000 - (Date.now() % (period * 1000)) + 150;
  totpWait.add(ms);
  sleep(ms / 1000);
}

// ---------------------------------------------------------------------------------------
// Small helpers

function randomFrom(alphabet, n) {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
  return s;
}

/** A run id: keeps user ids unique across runs against the same database. */
export function newRunId() {
  return `${Date.now().toString(36)}${randomFrom('abcdefghijklmnopqrstuvwxyz0123456789', 4)}`;
}

/**
 * Hashes `from` … `from + n - 1` of the list named (run, label, owner, seq): distinct SHA-256
 * digests (base64), always the same for the same name, so a SAD's hashes can be bound in one
 * place and signed, batch by batch, in another without being stored.
 */
export function makeHashes(run, label, owner, seq, n, from = 0) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = crypto.sha256(`sigillo-k6/${run}/${label}/${owner}/${seq}/${from + i}`, 'base64');
  return out;
}

function json(res) {
  try {
    return res.json();
  } catch (_) {
    return null;
  }
}

/** "status error: description" of a failed answer, for messages. */
export function describe(res) {
  const body = json(res);
  if (body && body.error) return `${res.status} ${body.error}: ${body.error_description || ''}`;
  return `${res.status} ${res.error || (res.body ? String(res.body).slice(0, 200) : '')}`;
}

function bearer(token, name) {
  return {
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    tags: { name },
  };
}

function note503(res) {
  if (res.status === 503) unavailable.add(1);
}

/** Checks a signHash answer: one DER ECDSA signature per hash. */
export function checkSignatures(res, n, full = true) {
  const body = res.status === 200 ? json(res) : null;
  const sigs = body && Array.isArray(body.signatures) ? body.signatures : null;
  const der = (b64) => {
    try {
      const b = new Uint8Array(encoding.b64decode(b64, 'std'));
      return b.length >= 8 && b[0] === 0x30 && b[1] + 2 === b.length;
    } catch (_) {
      return false;
    }
  };
  const ok = check(res, {
    'signHash 200': (r) => r.status === 200,
    'signHash: one signature per hash': () => sigs !== null && sigs.length === n,
    'signHash: DER ECDSA signatures': () =>
      sigs !== null && sigs.length > 0 && (full ? sigs.every(der) : der(sigs[0]) && der(sigs[sigs.length - 1])),
  });
  if (sigs !== null && res.status === 200) signaturesMade.add(sigs.length);
  return ok;
}

// ---------------------------------------------------------------------------------------
// The API calls

export function login(userId, password) {
  const res = http.post(`${cfg.baseUrl}/csc/v2/auth/login`, '{}', {
    headers: {
      Authorization: `Basic ${encoding.b64encode(`${userId}:${password}`)}`,
      'Content-Type': 'application/json',
    },
    tags: { name: 'login' },
  });
  note503(res);
  const body = res.status === 200 ? json(res) : null;
  check(res, { 'login 200 with a token': () => body !== null && typeof body.access_token === 'string' });
  return body && body.access_token
    ? { token: body.access_token, expiresAt: Date.now() + (body.expires_in || 3600) * 1000 }
    : null;
}

export function listCredentials(token) {
  const res = http.post(`${cfg.baseUrl}/csc/v2/credentials/list`, '{}', bearer(token, 'credentials/list'));
  note503(res);
  const body = res.status === 200 ? json(res) : null;
  return { res, ids: body && Array.isArray(body.credentialIDs) ? body.credentialIDs : [] };
}

export function credentialInfo(token, credentialId) {
  const res = http.post(
    `${cfg.baseUrl}/csc/v2/credentials/info`,
    JSON.stringify({ credentialID: credentialId, certificates: 'single', certInfo: true, authInfo: true }),
    bearer(token, 'credentials/info'),
  );
  note503(res);
  return { res, info: res.status === 200 ? json(res) : null };
}

/**
 * credentials/authorize (v2) with PIN + the TOTP code of `step`. `hashes` (base64 SHA-256)
 * are bound to the SAD when given (required by SCAL "2", accepted by SCAL "1"); `n` is
 * numSignatures. Returns the HTTP response and {sad, expiresAt} or null.
 */
export function authorize(user, step, n, hashes) {
  const body = {
    credentialID: user.credential_id,
    numSignatures: n,
    hashAlgorithmOID: SHA256_OID,
    authData: [
      { id: 'PIN', value: user.pin },
      { id: 'OTP', value: totpCode(user.totp, step) },
    ],
  };
  if (hashes) body.hashes = hashes;
  const res = http.post(`${cfg.baseUrl}/csc/v2/credentials/authorize`, JSON.stringify(body), bearer(user.token, 'authorize'));
  note503(res);
  // The step counts as used whatever the answer: the gateway checks the OTP first.
  user.last_step = Math.max(user.last_step, step);
  const out = res.status === 200 ? json(res) : null;
  const ok = check(res, { 'authorize 200 with a SAD': () => out !== null && typeof out.SAD === 'string' });
  if (ok) sadsIssued.add(1);
  return { res, sad: ok ? { sad: out.SAD, expiresAt: Date.now() + (out.expiresIn || 300) * 1000 } : null };
}

export function signHash(token, credentialId, sad, hashes, full = true) {
  const res = http.post(
    `${cfg.baseUrl}/csc/v2/signatures/signHash`,
    JSON.stringify({
      credentialID: credentialId,
      SAD: sad,
      hashes,
      hashAlgorithmOID: SHA256_OID,
      signAlgo: ECDSA_SHA256_OID,
    }),
    bearer(token, 'signHash'),
  );
  note503(res);
  checkSignatures(res, hashes.length, full);
  return res;
}

// ---------------------------------------------------------------------------------------
// Setup: the provisioner's subscribers, signed in

const CHUNK = 10; // requests per http.batch in setup

/**
 * The first `count` subscribers of SUBSCRIBERS (each TOTP, with an active ec-p256 credential),
 * signed in. Returns [{user_id, password, credential_id, pin, totp, last_step, token,
 * token_expires}].
 */
export function createSubscribers(run, label, count) {
  const how =
    `provision them first: sigillo-bench provision --users ${count} --otp totp --prefix k6.${label}.${run} --out FILE, ` +
    'then k6 run -e SUBSCRIBERS=FILE';
  if (!provisioned) throw new Error(`setup: SUBSCRIBERS is not set; ${how}`);
  if (provisioned.length < count) {
    throw new Error(`setup: ${cfg.subscribers} holds ${provisioned.length} subscribers, ${label} needs ${count}; ${how}`);
  }
  const users = provisioned.slice(0, count).map((p) => {
    if (p.otp_method !== 'totp' || !p.totp_uri) throw new Error(`setup: ${p.user_id} is not a TOTP subscriber; ${how}`);
    const totp = parseOtpauth(p.totp_uri);
    return {
      user_id: p.user_id,
      password: p.password,
      credential_id: p.credential_id,
      pin: p.pin,
      totp,
      last_step: typeof p.last_step === 'number' ? p.last_step : nowStep(totp.period),
    };
  });
  for (let i = 0; i < users.length; i += CHUNK) {
    const chunk = users.slice(i, i + CHUNK);
    const logins = http.batch(
      chunk.map((u) => [
        'POST',
        `${cfg.baseUrl}/csc/v2/auth/login`,
        '{}',
        {
          headers: {
            Authorization: `Basic ${encoding.b64encode(`${u.user_id}:${u.password}`)}`,
            'Content-Type': 'application/json',
          },
          tags: { name: 'login' },
        },
      ]),
    );
    logins.forEach((r, k) => {
      if (r.status !== 200) throw new Error(`setup: POST /csc/v2/auth/login failed: ${describe(r)}`);
      chunk[k].token = r.json('access_token');
      chunk[k].token_expires = Date.now() + (r.json('expires_in') || 3600) * 1000;
    });
  }
  return users;
}

/** SCAL and multisign the gateway announces for a credential (credentials/info). */
export function serverLimits(user) {
  const { res, info } = credentialInfo(user.token, user.credential_id);
  if (!info) throw new Error(`setup: credentials/info failed: ${describe(res)}`);
  return { scal: String(info.SCAL), multisign: Number(info.multisign) };
}

// ---------------------------------------------------------------------------------------
// The full CSC flow (flow.js, smoke.js): one fresh subscriber per iteration

/** setup() of the flow scenarios: one subscriber per iteration. */
export function flowSetup(iterations, hashes) {
  const run = newRunId();
  const users = createSubscribers(run, 'flow', iterations);
  const limits = serverLimits(users[0]);
  if (hashes < 1 || hashes > limits.multisign) {
    throw new Error(`HASHES=${hashes}: the gateway signs 1 to ${limits.multisign} hashes per signHash`);
  }
  console.log(`flow: ${iterations} subscribers ready; gateway SCAL ${limits.scal}, multisign ${limits.multisign}`);
  return { run, hashes, users };
}

/**
 * One iteration: login → credentials/list → credentials/info → authorize (PIN + TOTP, the
 * hashes bound) → signHash. Uses the subscriber of this iteration's global index.
 */
export function flowIteration(data) {
  const idx = exec.scenario.iterationInTest;
  const user = data.users[idx];
  if (!user) throw new Error(`iteration ${idx}: no subscriber prepared (setup made ${data.users.length})`);

  const session = login(user.user_id, user.password);
  if (!session) return;
  user.token = session.token;

  const list = listCredentials(user.token);
  check(list.res, {
    'credentials/list 200': (r) => r.status === 200,
    'credentials/list has the credential': () => list.ids.includes(user.credential_id),
  });

  const { res: infoRes, info } = credentialInfo(user.token, user.credential_id);
  check(infoRes, {
    'credentials/info 200': (r) => r.status === 200,
    'credentials/info: key enabled': () => info !== null && info.key && info.key.status === 'enabled',
  });

  const hashes = makeHashes(data.run, 'flow', idx, 0, data.hashes);
  const step = usableStep(user);
  if (step === null) throw new Error(`iteration ${idx}: ${user.user_id} has no TOTP step left (reused?)`);
  const { sad } = authorize(user, step, hashes.length, hashes);
  if (!sad) return;

  signHash(user.token, user.credential_id, sad.sad, hashes, true);
}

// ---------------------------------------------------------------------------------------
// Batch signing (soak.js, spike.js): each VU owns `perVu` subscribers and a SAD at a time

/**
 * setup() of the batch scenarios. Creates vus × perVu subscribers and, for every VU, its
 * first SAD (user 0 of the VU, `sadSize` hashes derived from (run, label, vu, 0) — the VU
 * derives the same list, so nothing big travels in the setup data).
 *
 * sadSize is rounded down to a multiple of `batch`. With bind=true the hashes are bound to
 * the SAD (works with SCAL "1" and "2"; the request body grows ~47 bytes a hash); with
 * bind=false the SAD binds none (SCAL "1" only: refused up front on a SCAL "2" gateway).
 */
export function batchSetup(label, vus, perVu, batch, sadSize, bind) {
  const n = Math.floor(sadSize / batch) * batch;
  if (batch < 1) throw new Error('BATCH must be at least 1');
  if (n < 1) throw new Error(`SAD_SIGNATURES=${sadSize} is smaller than BATCH=${batch}`);
  if (perVu < 1) throw new Error('USERS_PER_VU must be at least 1');
  const run = newRunId();
  const users = createSubscribers(run, label, vus * perVu);
  const limits = serverLimits(users[0]);
  if (batch > limits.multisign) {
    throw new Error(`BATCH=${batch}: the gateway signs at most ${limits.multisign} hashes per signHash (csc.max_hashes)`);
  }
  if (!bind && limits.scal === '2') {
    throw new Error(
      'BIND=0 needs a SCAL "1" gateway (SIGILLO__CSC__SCAL=1): with SCAL "2" every SAD must bind its hashes. ' +
        'Run with BIND=1 (default) or start the gateway with SCAL 1.',
    );
  }
  const first = [];
  for (let v = 0; v < vus; v++) {
    const user = users[v * perVu];
    const step = usableStep(user);
    const { res, sad } = authorize(user, step, n, bind ? makeHashes(run, label, v + 1, 0, n) : null);
    if (!sad) {
      throw new Error(
        `setup: authorize of ${n} signatures refused: ${describe(res)}. ` +
          'Lower SAD_SIGNATURES or raise SIGILLO__CSC__MAX_SIGNATURES / SIGILLO__SERVER__MAX_BODY_BYTES.',
      );
    }
    first.push({ sad: sad.sad, expiresAt: sad.expiresAt, user: 0 });
  }
  console.log(
    `${label}: ${vus} VUs × ${perVu} subscribers ready; SAD ${n} signatures (${bind ? 'hashes bound' : 'unbound'}), ` +
      `batch ${batch}; gateway SCAL ${limits.scal}, multisign ${limits.multisign}`,
  );
  return { run, label, perVu, batch, n, bind, users, first };
}

let signer = null; // this VU's state (each VU has its own JS runtime)

function initSigner(data) {
  const vu = exec.vu.idInTest; // 1-based
  const users = data.users.slice((vu - 1) * data.perVu, vu * data.perVu);
  if (users.length !== data.perVu || !data.first[vu - 1]) {
    throw new Error(`VU ${vu}: no subscribers prepared for it (setup prepared ${data.first.length} VUs)`);
  }
  const f = data.first[vu - 1];
  return {
    vu,
    users,
    current: f.user,
    sad: f.sad,
    expiresAt: f.expiresAt,
    seq: 0,
    used: 0,
  };
}

/** Logs `user` in again when its access token is about to expire (long soaks). */
function keepToken(user) {
  if (Date.now() < user.token_expires - 60000) return;
  const session = login(user.user_id, user.password);
  if (!session) throw new Error(`login of ${user.user_id} failed`);
  user.token = session.token;
  user.token_expires = session.expiresAt;
}

/** A fresh SAD for this VU from the first of its users with a TOTP step to spare. */
function renewSad(data) {
  const s = signer;
  for (;;) {
    let pick = -1;
    let pickStep = null;
    for (let k = 0; k < s.users.length; k++) {
      const i = (s.current + 1 + k) % s.users.length;
      const step = usableStep(s.users[i]);
      if (step !== null && (pickStep === null || step < pickStep)) {
        pick = i;
        pickStep = step;
      }
    }
    if (pick < 0) {
      waitForNextStep(s.users[0].totp.period);
      continue;
    }
    const user = s.users[pick];
    keepToken(user);
    const seq = s.seq + 1;
    const hashes = data.bind ? makeHashes(data.run, data.label, s.vu, seq, data.n) : null;
    const { res, sad } = authorize(user, pickStep, data.n, hashes);
    if (!sad) {
      sleep(1); // no hot loop on a refusing gateway; the failed check and request are counted
      throw new Error(`VU ${s.vu}: authorize refused: ${describe(res)}`);
    }
    Object.assign(s, { current: pick, sad: sad.sad, expiresAt: sad.expiresAt, seq, used: 0 });
    return;
  }
}

/** One signHash of data.batch hashes, renewing the VU's SAD when it is used up or expiring. */
export function signBatch(data) {
  if (signer === null) signer = initSigner(data);
  const s = signer;
  if (s.used + data.batch > data.n || Date.now() > s.expiresAt - 5000) renewSad(data);
  const user = s.users[s.current];
  keepToken(user); // a SAD belongs to the user, not to the token: a fresh token signs on
  const hashes = makeHashes(data.run, data.label, s.vu, s.seq, data.batch, s.used);
  s.used += data.batch; // consumed by the gateway whatever happens next, unless it refused
  signHash(user.token, user.credential_id, s.sad, hashes, false);
}
