// tests/load/soak.js — batch-signing soak: constant VUs sending signHash batches.
//
// setup() takes VUS × USERS_PER_VU subscribers (TOTP, active ec-p256 credential) from
// SUBSCRIBERS (made by `sigillo-bench provision`, lib.js) and, for
// every VU, ONE SAD of SAD_SIGNATURES signatures. Then each VU sends signHash with BATCH
// hashes for DURATION. The SAD's hashes are derived deterministically from (run, VU, SAD
// number), so the VU signs exactly the hashes the SAD was issued for.
//
// SCAL: works with SCAL "1" and "2" as it is — the hashes are always bound to the SAD
// (BIND=1). With BIND=0 the SAD binds none, which lifts the request-size limit on
// SAD_SIGNATURES; that needs a SCAL "1" gateway and setup stops at once with a clear message
// on a SCAL "2" one.
//
// When a VU's SAD is used up (or about to expire) it authorizes a new one with the next of
// its own subscribers that still has a TOTP step to spare; if none has, it waits for the next
// 30 s step (metric `totp_wait`). So with the gateway's default csc.max_signatures (1000) the
// load is paced by TOTP; to soak signHash alone give one SAD for the whole run, e.g. with
// SIGILLO__CSC__SCAL=1 and SIGILLO__CSC__MAX_SIGNATURES=1000000000 on the gateway:
//   k6 run -e ... -e BIND=0 -e SAD_SIGNATURES=100000000 tests/load/soak.js
//
//   target/debug/sigillo-bench provision --users 12 --out /tmp/users.json   # see lib.js
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e SUBSCRIBERS=/tmp/users.json tests/load/soak.js
//
// Env: VUS (4), DURATION (30s), BATCH (100), SAD_SIGNATURES (1000), USERS_PER_VU (3), BIND (1).
// Thresholds: no failed request, every check passes, signHash p(99) < 2 s.

import { batchSetup, intEnv, signBatch } from './lib.js';

const VUS = intEnv('VUS', 4);
const BATCH = intEnv('BATCH', 100);
const SAD_SIGNATURES = intEnv('SAD_SIGNATURES', 1000);
const USERS_PER_VU = intEnv('USERS_PER_VU', 3);
const BIND = intEnv('BIND', 1) !== 0;
const DURATION = __ENV.DURATION || '30s';

export const options = {
  scenarios: {
    soak: {
      executor: 'constant-vus',
      vus: VUS,
      duration: DURATION,
      gracefulStop: '10s',
    },
  },
  setupTimeout: '5m',
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
    'http_req_duration{name:signHash}': ['p(99)<2000'],
    // Shown in the summary, never failing:
    'http_req_duration{name:authorize}': ['max>=0'],
  },
};

export function setup() {
  return batchSetup('soak', VUS, USERS_PER_VU, BATCH, SAD_SIGNATURES, BIND);
}

export default function (data) {
  signBatch(data);
}
