// The portal pages reached without signing in (emergency suspension, "Non riesco ad accedere"
// and its link's page) and the signed-in pages of the signing history, the expiry notices and
// the renewal, in Debian's Chromium driven by Playwright (playwright-core): each page in
// Italian and English, at a desktop width and at 375 px, is checked by axe-core (a serious or
// critical violation fails the run) and screenshotted into --out-dir; then the forms are used
// as a subscriber would (a wrong emergency code, a recovery request, the sign-in, the right
// emergency code last, since it suspends the credential).
//
// axe-core is injected with page.addScriptTag, which the pages' CSP (no scripts at all) would
// refuse: the context bypasses the CSP for that alone. The last line on stdout is a JSON
// summary. Run by tests/it/portal_public.rs, which creates the subscriber, the credential, the
// emergency code and the recovery link.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
}
for (const k of ['base-url', 'user', 'password', 'credential-id', 'emergency-code', 'recovery-token', 'out-dir']) {
  if (!args[k]) { console.error(`missing --${k}`); process.exit(2); }
}
const OUT = args['out-dir'];
fs.mkdirSync(OUT, { recursive: true });
// A bound on the whole run: it stops by itself.
setTimeout(() => { console.error('portal_public: timed out'); process.exit(3); }, 60_000).unref();

const AXE = path.join(__dirname, 'node_modules', 'axe-core', 'axe.min.js');
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 375, height: 740 };

function check(cond, what, detail) {
  if (!cond) {
    throw new Error(`${what}${detail === undefined ? '' : `: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`}`);
  }
}

async function main() {
  const base = args['base-url'];
  const userDataDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'sigillo-portal-profile-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    bypassCSP: true,
    viewport: DESKTOP,
    locale: 'it-IT',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const screenshots = [];
  const audited = [];
  const errors = [];
  const summary = { screenshots, audited, serious: [] };
  try {
    const page = context.pages()[0] || await context.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));

    // axe-core on the page as it is; serious and critical violations fail the run.
    const audit = async (name) => {
      await page.addScriptTag({ path: AXE });
      const violations = await page.evaluate(async () => {
        // eslint-disable-next-line no-undef
        const result = await axe.run(document, { resultTypes: ['violations'] });
        return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
      });
      const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      for (const v of serious) summary.serious.push({ page: name, ...v });
      audited.push({ page: name, violations: violations.length, serious: serious.length });
    };
    const shot = async (name) => {
      const file = path.join(OUT, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      screenshots.push(file);
    };
    // A page in both languages at both widths.
    const tour = async (name, url, expectStatus = 200) => {
      for (const lang of ['it', 'en']) {
        for (const [width, size] of [['desktop', DESKTOP], ['375', PHONE]]) {
          await page.setViewportSize(size);
          const sep = url.includes('?') ? '&' : '?';
          const res = await page.goto(`${base}${url}${sep}lang=${lang}`);
          check(res.status() === expectStatus, `${name} ${lang}: HTTP ${res.status()}`);
          check(await page.getAttribute('html', 'lang') === lang, `${name}: html lang`);
          // Nothing wider than the window at 375 px.
          const wide = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
          check(!wide, `${name} ${lang} ${width}: wider than the window`);
          await audit(`${name}-${lang}-${width}`);
          await shot(`${name}-${lang}-${width}`);
        }
      }
      await page.setViewportSize(DESKTOP);
    };

    await tour('emergency', '/portal/emergency');
    await tour('recovery', '/portal/recovery');
    await tour('recovery-link', `/portal/recovery?token=${encodeURIComponent(args['recovery-token'])}`);

    // A wrong emergency code: the refusal, readable, on the page.
    await page.goto(`${base}/portal/emergency?lang=it`);
    await page.fill('#user_id', args.user);
    await page.fill('#emergency_code', '0000-0000-0000');
    await page.click('button[type=submit]');
    check((await page.textContent('.error')).includes('non corretti'), 'emergency refusal');
    await audit('emergency-refused-it');
    await shot('emergency-refused-it-desktop');

    // A recovery request: the same answer whatever the user id.
    await page.goto(`${base}/portal/recovery?lang=en`);
    await page.fill('#user_id', `nobody-${Date.now()}`);
    await page.click('button[value=ask]');
    check((await page.textContent('#recovery-asked')).includes('If the user ID is registered'), 'recovery asked');
    await audit('recovery-asked-en');
    await shot('recovery-asked-en-desktop');

    // Signed in: the history, the expiry notices and the renewal of the credential.
    await page.goto(`${base}/portal/login?lang=it`);
    await page.fill('#user_id', args.user);
    await page.fill('#password', args.password);
    await page.click('button[type=submit]');
    await page.waitForURL(/\/portal\/(\?|$)/);
    const credential = args['credential-id'];
    await tour('history', `/portal/credentials/${credential}/history`);
    const history = await page.locator('.history-entry').count();
    summary.history_entries = history;
    await tour('notices', '/portal/notices');
    await tour('renew', `/portal/credentials/${credential}/renew`);

    // Last, the right emergency code: the credential is suspended.
    await page.goto(`${base}/portal/emergency?lang=it`);
    await page.fill('#user_id', args.user);
    await page.fill('#emergency_code', args['emergency-code']);
    await page.click('button[type=submit]');
    summary.suspended = Number(await page.textContent('#suspended-count'));
    await audit('emergency-done-it');
    await shot('emergency-done-it-desktop');

    check(errors.length === 0, 'script errors on the pages', errors);
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(summary));
  if (summary.serious.length > 0) process.exit(1);
}

main().catch((e) => { console.error(e && e.stack ? e.stack : e); process.exit(1); });
