// tests/load/spike.js — a spike of signHash batches: 1 → SPIKE_VUS VUs in 5 s, hold 10 s,
// back to 1 in 5 s; every request signs BATCH (10) hashes.
//
// Preparation as in soak.js: setup() takes SPIKE_VUS × USERS_PER_VU subscribers (TOTP,
// active ec-p256 credential) and one SAD of SAD_SIGNATURES signatures per VU, hashes bound
// (BIND=1, works with SCAL "1" and "2"; BIND=0 needs SCAL "1" and is refused up front on a
// SCAL "2" gateway). A VU whose SAD runs out authorizes a new one with its next subscriber
// (waiting for a fresh TOTP step if it must; metric `totp_wait`).
//
// A 503 with Retry-After (HSM queue full) is an ERROR here, reported as such (http_req_failed,
// the failed check, and the `http_503` counter), never retried or hidden.
//
//   target/debug/sigillo-bench provision --users 100 --out /tmp/users.json   # see lib.js
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e SUBSCRIBERS=/tmp/users.json tests/load/spike.js
//
// Env: SPIKE_VUS (50), BATCH (10), SAD_SIGNATURES (1000), USERS_PER_VU (2), BIND (1).
// Thresholds: no failed request, every check passes, signHash p(95) < 2 s.

import { batchSetup, intEnv, signBatch } from './lib.js';

const SPIKE_VUS = intEnv('SPIKE_VUS', 50);
const BATCH = intEnv('BATCH', 10);
const SAD_SIGNATURES = intEnv('SAD_SIGNATURES', 1000);
const USERS_PER_VU = intEnv('USERS_PER_VU', 2);
const BIND = intEnv('BIND', 1) !== 0;

export const options = {
  scenarios: {
    spike: {
      executor: 'ramping-vus',
      startVUs: 1,
      stages: [
        { duration: '5s', target: SPIKE_VUS },
        { duration: '10s', target: SPIKE_VUS },
        { duration: '5s', target: 1 },
      ],
      gracefulRampDown: '5s',
      gracefulStop: '5s',
    },
  },
  setupTimeout: '5m',
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
    'http_req_duration{name:signHash}': ['p(95)<2000'],
    http_503: ['count==0'],
    // Shown in the summary, never failing:
    'http_req_duration{name:authorize}': ['max>=0'],
  },
};

export function setup() {
  return batchSetup('spike', SPIKE_VUS, USERS_PER_VU, BATCH, SAD_SIGNATURES, BIND);
}

export default function (data) {
  signBatch(data);
}
