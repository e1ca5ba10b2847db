// node_reply_browser_test.js - the clinic node's web app (headless chromium, playwright-core)
// shows in its worklist that a dermatologist's reply came back from the hub: the plan in the
// page's language (en, fr, ar) and a "new" flag until the case is opened.
//   node node_reply_browser_test.js NODE_URL CASE_ID PLAN USER PASSWORD ARTEFACTS
'use strict';
const path = require('path');
const fs = require('fs');
const CHROMIUM = process.env.BASIRA_CHROMIUM || '/usr/bin/chromium';
let chromium;
try {
  ({ chromium } = require(path.join(__dirname, '..', 'web', 'node_modules', 'playwright-core')));
} catch (e) {
  console.log('SKIP: playwright-core missing (cd tests/web && npm ci)');
  process.exit(77);
}
const [base, caseId, plan, user, pass, art] = process.argv.slice(2);
fs.mkdirSync(art, { recursive: true });
const web = path.join(__dirname, '..', '..', 'web', 'i18n');
let failures = 0;
function check(cond, what) {
  console.log((cond ? 'ok   ' : 'FAIL ') + what);
  if (!cond) failures++;
}
const fill = (s, v) => s.replace(/\{(\w+)\}/g, (_, k) => v[k]);

(async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/?lang=fr`);
  await page.waitForSelector('#screen-login:not([hidden])');
  await page.fill('#login-user', user);
  await page.fill('#login-pass', pass);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#who:not([hidden])');
  const row = `#wl-items a[href="#/case/${caseId}"]`;
  // Unread in every language (the list is only read, never opened, until the end).
  for (const lang of ['fr', 'ar', 'en']) {
    const T = JSON.parse(fs.readFileSync(path.join(web, lang + '.json'), 'utf8'));
    await page.goto(`${base}/?lang=${lang}#/worklist`);
    await page.click(`.lang[data-lang="${lang}"]`).catch(() => {});
    await page.waitForSelector(`${row} .wl-reply`);
    await page.waitForFunction((w) => {
      const r = document.querySelector(w.row + ' .wl-reply');
      return r && r.textContent.includes(w.want);
    }, { row, want: T['plan_' + plan] }, { timeout: 10000 }).catch(() => {});
    const text = await page.textContent(`${row} .wl-reply`);
    check(text.includes(fill(T.reply_from_hub, { plan: T['plan_' + plan] })),
      `${lang}: the worklist shows the dermatologist's reply (${text.trim()})`);
    check(await page.isVisible(`${row} .wl-reply .wl-new`) && text.includes(T.reply_unread),
      `${lang}: flagged as new`);
    if (lang === 'ar') {
      const dir = await page.$eval(`${row} .wl-reply`, (e) => getComputedStyle(e).direction);
      check(dir === 'rtl', 'ar: the reply line is right to left');
    }
    await page.screenshot({ path: path.join(art, `node-worklist-reply-${lang}.png`), fullPage: true });
  }
  // Opening the case reads the reply: back in the worklist the flag is gone.
  await page.goto(`${base}/?lang=en#/case/${caseId}`);
  await page.waitForSelector('#screen-case:not([hidden])').catch(() => {});
  await page.waitForTimeout(500);
  await page.goto(`${base}/?lang=en#/queue`);
  await page.goto(`${base}/?lang=en#/worklist`);
  await page.waitForSelector(`${row} .wl-reply`);
  await page.waitForFunction((r) => !document.querySelector(r + ' .wl-new'), row, { timeout: 10000 }).catch(() => {});
  check(!(await page.$(`${row} .wl-new`)), 'en: once the case was opened, the reply is no longer new');
  check(errors.length === 0, 'no page errors' + (errors.length ? ': ' + errors.join('; ') : ''));
  await browser.close();
  process.exit(failures ? 1 : 0);
})().catch((e) => {
  console.log('FAIL ' + e);
  process.exit(1);
});
