// tests/load/smoke.js — a few seconds of the full CSC flow, for the test suite.
//
// 2 VUs share 4 iterations of flow.js's iteration (login → list → info → authorize with
// PIN + TOTP and bound hashes → signHash), 4 subscribers from SUBSCRIBERS (lib.js). Same thresholds as
// flow.js. Bounded: setup ≤ 20 s, iterations ≤ 10 s (+2 s grace); a few seconds against a
// release gateway.
//
//   target/debug/sigillo-bench provision --users 4 --out /tmp/users.json   # see lib.js
//   k6 run -e BASE_URL=http://127.0.0.1:8080 -e SUBSCRIBERS=/tmp/users.json tests/load/smoke.js

import { flowIteration, flowSetup } from './lib.js';

const ITERATIONS = 4;
const HASHES = 3;

export const options = {
  scenarios: {
    smoke: {
      executor: 'shared-iterations',
      vus: 2,
      iterations: ITERATIONS,
      maxDuration: '10s',
      gracefulStop: '2s',
    },
  },
  setupTimeout: '20s',
  thresholds: {
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
    'http_req_duration{name:signHash}': ['p(95)<500'],
  },
};

export function setup() {
  return flowSetup(ITERATIONS, HASHES);
}

export default function (data) {
  flowIteration(data);
}
