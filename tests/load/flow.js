// tests/load/flow.js — the full CSC flow under many virtual users.
//
// Each iteration is one subscriber signing: login → credentials/list → credentials/info →
// credentials/authorize (PIN + TOTP, the hashes bound to the SAD) → signatures/signHash.
// setup() takes ITERATIONS subscribers (TOTP, active ec-p256 credential) from SUBSCRIBERS
// (made by `sigillo-bench provision`), one per iteration, so no TOTP step is ever needed twice. Works with SCAL "1" and "2".
//
//   target/debug/sigillo-bench provision --users 50 --out /tmp/users.json   # see lib.js
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e SUBSCRIBERS=/tmp/users.json tests/load/flow.js
//
// Env: VUS (10), ITERATIONS (50), HASHES per signature request (10).
// Thresholds: no failed request, every check passes, signHash p(95) < 500 ms.

import { flowIteration, flowSetup, intEnv } from './lib.js';

const VUS = intEnv('VUS', 10);
const ITERATIONS = intEnv('ITERATIONS', 50);
const HASHES = intEnv('HASHES', 10);

export const options = {
  scenarios: {
    flow: {
      executor: 'shared-iterations',
      vus: VUS,
      iterations: ITERATIONS,
      maxDuration: '2m',
      gracefulStop: '10s',
    },
  },
  setupTimeout: '5m',
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
    'http_req_duration{name:signHash}': ['p(95)<500'],
    // Shown in the summary, never failing:
    'http_req_duration{name:authorize}': ['max>=0'],
    'http_req_duration{name:login}': ['max>=0'],
  },
};

export function setup() {
  return flowSetup(ITERATIONS, HASHES);
}

export default function (data) {
  flowIteration(data);
}
