// browser_test.js - the web app in headless Debian chromium (playwright-core),
// against the real `basira serve` with a temporary data folder.
//
//   node browser_test.js BASIRA_CLI [FIXTURES_TOOL]
//
// Whole flow in French and in Arabic (sign in, new case with the body map,
// capture guide, immediate quality feedback and retake guidance for a blurred
// photo, analysis of a real photo from ../shared/data, result, clinician
// decision, history, documents), RTL layout checks, user administration,
// catalogue completeness. Screenshots (phone viewport) go to
// $BASIRA_BUILD_DIR/tests/web/artefacts/. Exit 77 = skipped (no chromium, no
// node modules); the photo analysis part is skipped with a message when
// neither the bundled model nor the tiny test model is available, or without
// ../shared/data.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const crypto = require('crypto');
const { spawn, spawnSync } = require('child_process');
const { workflowFlow } = require('./workflow_flow.js');

const CHROMIUM = process.env.BASIRA_CHROMIUM || '/usr/bin/chromium';
const SRC = process.env.BASIRA_SOURCE_DIR || path.resolve(__dirname, '../..');
const BUILD = process.env.BASIRA_BUILD_DIR || process.cwd();
const cli = process.argv[2] || process.env.BASIRA_CLI;
const fixturesTool = process.argv[3] || '';

function skip(why) { console.log('SKIP: ' + why); process.exit(77); }

if (!cli || !fs.existsSync(cli)) skip('the basira program is not built (BASIRA_CLI)');
if (!fs.existsSync(CHROMIUM)) skip(`${CHROMIUM} not found (apt-get install chromium)`);
let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch (e) {
  skip('node modules missing (run: cd tests/web && npm ci)');
}

const ART = path.join(BUILD, 'tests', 'web', 'artefacts');
fs.mkdirSync(ART, { recursive: true });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'basira-web-'));
let failures = 0, checks = 0;
function check(cond, what) {
  checks++;
  if (!cond) { failures++; console.error('CHECK failed: ' + what); }
}

// ---- the clinic node -------------------------------------------------------

const env = { ...process.env, BASIRA_ARGON2_FAST: '1', LANG: 'C.UTF-8' };
delete env.BASIRA_DB_PASSPHRASE;
const data = path.join(tmp, 'data'), key = path.join(tmp, 'db.key'), pw = path.join(tmp, 'pw');
fs.writeFileSync(key, crypto.randomBytes(32), { mode: 0o600 });
fs.writeFileSync(pw, 'password-123\n');
const PASS = 'password-123';

function cliRun(args) {
  const r = spawnSync(cli, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`basira ${args.join(' ')}: ${r.stderr}`);
}

function freePort() {
  return new Promise((res) => {
    const s = http.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
  });
}

async function waitHealth(port) {
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/api/v1/health`);
      if (r.ok) return r.json();
    } catch (e) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('basira serve did not start');
}

// Until `basira serve` serves the app itself, a static server + API proxy stands in.
function startProxy(apiPort) {
  const types = { '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8',
    '.js': 'text/javascript; charset=utf-8', '.json': 'application/json; charset=utf-8', '.svg': 'image/svg+xml' };
  const web = path.join(SRC, 'web');
  const srv = http.createServer((req, res) => {
    if (req.url.startsWith('/api/')) {
      const p = http.request({ host: '127.0.0.1', port: apiPort, path: req.url, method: req.method, headers: req.headers },
        (pr) => { res.writeHead(pr.statusCode, pr.headers); pr.pipe(res); });
      p.on('error', () => { res.writeHead(502); res.end(); });
      req.pipe(p);
      return;
    }
    let rel = req.url.split('?')[0];
    rel = rel === '/' ? 'index.html' : rel.replace(/^\/app\//, '');
    const file = path.join(web, path.normalize(rel));
    if (!file.startsWith(web) || !fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream',
      'Content-Security-Policy': "default-src 'self'; img-src 'self' blob: data:" });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((res) => srv.listen(0, '127.0.0.1', () => res(srv)));
}

// ---- helpers in the page ------------------------------------------------------

async function signIn(page, base, lang, user) {
  await page.goto(`${base}/?lang=${lang}`);
  await page.waitForSelector('#screen-login:not([hidden])');
  await page.fill('#login-user', user);
  await page.fill('#login-pass', PASS);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#who:not([hidden])');
}

async function signOut(page) {
  await page.click('#sign-out');
  await page.waitForSelector('#screen-login:not([hidden])');
}

async function shot(page, name) {
  if (process.env.WEB_DEBUG) console.log("  shot " + name);
  await page.screenshot({ path: path.join(ART, name + '.png'), fullPage: true });
}

const cat = (lang) => JSON.parse(fs.readFileSync(path.join(SRC, 'web', 'i18n', lang + '.json'), 'utf8'));

// A blurred copy of a photo, made by chromium itself (canvas blur filter).
async function blurred(page, jpeg) {
  const b64 = await page.evaluate(async (src) => {
    const img = new Image();
    img.src = 'data:image/jpeg;base64,' + src;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const cx = c.getContext('2d');
    cx.filter = 'blur(5px)';
    cx.drawImage(img, 0, 0);
    return c.toDataURL('image/jpeg', 0.9).split(',')[1];
  }, jpeg.toString('base64'));
  return Buffer.from(b64, 'base64');
}

// ---- the flow, in one language -------------------------------------------------

// One browser profile (a new, empty --user-data-dir); each flow starts signed out.
async function freshPage(ctx) {
  await ctx.clearCookies();
  const page = await ctx.newPage();
  return page;
}

async function flow(ctx, base, lang, photo, canAnalyse) {
  const T = cat(lang);
  const page = await freshPage(ctx);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // HTTP errors the app expects and handles (401 before sign-in, a refused login) are
  // logged by chromium as "Failed to load resource"; anything else is a bug.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });

  if (process.env.WEB_DEBUG) console.log(`  ${lang}: start`);
  await page.goto(`${base}/?lang=${lang}`);
  await page.waitForSelector('#screen-login:not([hidden])');
  await page.waitForFunction((l) => document.documentElement.lang === l, lang);
  check(await page.textContent('#login-title') === T.login_title, `${lang}: sign-in title translated`);
  const dir = await page.evaluate(() => document.documentElement.dir);
  check(dir === (lang === 'ar' ? 'rtl' : 'ltr'), `${lang}: document dir is ${dir}`);
  // RTL layout: computed direction, and headings hug the right edge in Arabic, the left otherwise.
  const geo = await page.evaluate(() => {
    const h = document.getElementById('login-title');
    const r = h.getBoundingClientRect();
    const range = document.createRange();
    range.selectNodeContents(h);
    const tr = range.getBoundingClientRect();
    return { direction: getComputedStyle(h).direction, textLeft: tr.left, textRight: tr.right, width: document.documentElement.clientWidth, boxRight: r.right };
  });
  if (lang === 'ar') {
    check(geo.direction === 'rtl', 'ar: computed direction of the title is rtl');
    check(geo.width - geo.textRight < 40 && geo.textLeft > geo.width / 3, `ar: title text on the right (${geo.textLeft}..${geo.textRight} of ${geo.width})`);
  } else {
    check(geo.direction === 'ltr', `${lang}: computed direction ltr`);
    check(geo.textLeft < 40, `${lang}: title text on the left (${geo.textLeft})`);
  }
  await shot(page, `${lang}-01-login`);

  // Wrong password: a clear message, in the language.
  await page.fill('#login-user', 'nurse1');
  await page.fill('#login-pass', 'wrong-password');
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#login-error:not([hidden])');
  check(await page.textContent('#login-error') === T.login_failed, `${lang}: failed sign-in message`);

  await signIn(page, base, lang, 'nurse1');
  await page.waitForSelector('#screen-worklist:not([hidden])');

  // New case, with the body map (keyboard: Tab to a site and Enter).
  await page.click('a[href="#/new"] >> nth=0');
  await page.waitForSelector('#screen-new:not([hidden])');
  const ref = `PT-${lang}-${Date.now() % 100000}`;
  await page.fill('#patient-ref', ref);
  await page.fill('#age', '54');
  await page.selectOption('#sex', 'female');
  await page.focus('.site[data-site="chest"]');
  await page.keyboard.press('Enter');
  check(await page.textContent('#site-name') === T.site_chest, `${lang}: body map selection by keyboard`);
  await page.click('.site[data-site="upper_arm_left"]');
  check(await page.textContent('#site-name') === T.site_upper_arm_left, `${lang}: body map selection by touch`);
  await page.check('input[name="changed"][value="yes"]');
  await page.check('input[name="bleeding"][value="no"]');
  await page.fill('#duration', '6');
  // Without consent for care: refused in the browser, with the reason.
  await page.click('#case-form button[type=submit]');
  check(await page.textContent('#case-error') === T.need_consent, `${lang}: consent required`);
  await page.check('#consent-care');
  await page.check('#consent-research');
  await shot(page, `${lang}-02-new-case`);
  await page.click('#case-form button[type=submit]');
  await page.waitForSelector('#screen-capture:not([hidden])');
  const caseId = parseInt((await page.evaluate(() => location.hash)).split('/')[2], 10);
  check(caseId > 0, `${lang}: case created (${caseId})`);
  check((await page.textContent('.guide')).includes(T.guide_flash), `${lang}: capture guide shown`);
  const input = await page.$('#photo-input');
  check(await input.getAttribute('capture') === 'environment' && await input.getAttribute('accept') === 'image/*',
    `${lang}: camera input`);

  if (photo) {
    // A blurred photo: immediate feedback and retake guidance, before anything is sent.
    const blur = await blurred(page, photo);
    await page.setInputFiles('#photo-input', { name: 'blurred.jpg', mimeType: 'image/jpeg', buffer: blur });
    await page.waitForSelector('#retake:not([hidden])');
    const guidance = await page.textContent('#retake');
    check(guidance.includes(T.q_blurry), `${lang}: blur guidance shown (${guidance.trim().slice(0, 120)})`);
    check(await page.textContent('#retake h2') === T.retake_title, `${lang}: retake title`);
    await shot(page, `${lang}-03-blurred-retake`);
    if (canAnalyse) {
      // The node's gate too: a blurred photo sent anyway comes back with its guidance.
      await page.click('#analyse');
      await page.waitForFunction((busy) => document.getElementById('analyse-status').textContent !== busy, T.analysing);
      const st = await page.textContent('#analyse-status');
      const stayed = await page.evaluate(() => location.hash.startsWith('#/capture'));
      console.log(`  ${lang}: blurred photo sent anyway -> ${stayed ? 'refused by the node: ' + st : 'accepted by the node'}`);
    }

    // The real photo: quality OK, analysed, result shown.
    await page.goto(`${base}/?lang=${lang}#/capture/${caseId}`);
    await page.waitForSelector('#screen-capture:not([hidden])');
    await page.setInputFiles('#photo-input', { name: 'lesion.jpg', mimeType: 'image/jpeg', buffer: photo });
    await page.waitForSelector('#quality.ok, #quality.bad');
    check(await page.getAttribute('#quality', 'class') === 'feedback ok',
      `${lang}: real photo passes the browser check (sharpness ${await page.getAttribute('#quality', 'data-sharpness')})`);
    check(await page.isHidden('#retake'), `${lang}: no retake guidance for a sharp photo`);
    if (canAnalyse) {
      await page.click('#analyse');
      await page.waitForSelector('#screen-case:not([hidden])', { timeout: 60000 });
      await page.waitForSelector('#result:not([hidden])');
      const idx = parseInt(await page.textContent('#risk-index'), 10);
      check(idx >= 0 && idx <= 100, `${lang}: risk index ${idx}`);
      check((await page.$$('#conditions li')).length === 3, `${lang}: three conditions`);
      const catText = await page.textContent('#category');
      check([T.cat_high, T.cat_medium, T.cat_low].includes(catText), `${lang}: category "${catText}"`);
      const action = await page.textContent('#action');
      check([T.action_high, T.action_medium, T.action_low].includes(action), `${lang}: action shown`);
      check((await page.textContent('#result')).includes(T.disclaimer), `${lang}: disclaimer on the result`);
      check((await page.textContent('#model')).length > 2, `${lang}: model version shown`);
      const tone = await page.textContent('#skin-tone');
      check(tone.length > 0, `${lang}: skin tone "${tone}"`);
      if (lang === 'ar' && idx > 5) {
        // The gauge mirrors: a higher index sits further left.
        const g = await page.evaluate(() => {
          const t = document.querySelector('.gauge-track').getBoundingClientRect();
          const m = document.getElementById('gauge-mark').getBoundingClientRect();
          return { fromRight: t.right - m.right, width: t.width };
        });
        check(g.fromRight > 0 && g.fromRight < g.width, `ar: gauge mark measured from the right (${g.fromRight})`);
      }
      const photoSrc = await page.getAttribute('#result-photo', 'src');
      if (photoSrc && (await page.request.get(base + photoSrc)).status() === 200) {
        await page.waitForFunction(() => { const i = document.getElementById('result-photo'); return !i.hidden && i.complete && i.naturalWidth > 0; });
        check(true, `${lang}: analysed photo shown`);
      } else {
        console.log(`  note ${lang}: the photo route is not served: photo not checked`);
      }
      await shot(page, `${lang}-04-result`);
    } else {
      await page.click('#analyse');
      await page.waitForFunction((busy) => document.getElementById('analyse-status').textContent !== busy, T.analysing);
      check(await page.textContent('#analyse-status') === T.analysis_unavailable, `${lang}: 503 explained`);
      console.log(`  SKIP ${lang}: photo analysis (no model on this node): result screen not checked`);
      await shot(page, `${lang}-04-no-model`);
    }
  } else {
    console.log(`  SKIP ${lang}: real photo part (../shared/data absent)`);
  }

  // The nurse cannot decide; a GP can.
  await page.goto(`${base}/?lang=${lang}#/case/${caseId}`);
  await page.waitForSelector('#screen-case:not([hidden])');
  check(await page.isVisible('#decision-nurse'), `${lang}: nurse sees who decides`);
  await signOut(page);
  await signIn(page, base, lang, 'gp1');
  await page.goto(`${base}/?lang=${lang}#/case/${caseId}`);
  await page.waitForSelector('#decision-form:not([hidden])');
  await page.check('input[name="accept"][value="override"]');
  await page.click('#decision-form button[type=submit]');
  check(await page.textContent('#decision-error') === T.need_reason, `${lang}: override needs a reason`);
  await page.selectOption('#override-cat', 'high');
  await page.fill('#override-reason', lang === 'ar' ? 'آفة غير متناظرة' : 'Lésion asymétrique, à voir');
  await page.selectOption('#referral', 'requested');
  await page.click('#decision-form button[type=submit]');
  await page.waitForSelector('#banner:not([hidden])');
  check(await page.textContent('#banner') === T.decision_saved, `${lang}: decision saved`);
  await page.waitForFunction(() => document.querySelectorAll('#case-history li').length >= 2);
  const hist = await page.textContent('#case-history');
  check(hist.includes('gp1'), `${lang}: decision in the case history`);
  await shot(page, `${lang}-05-decision`);

  // Worklist: the case, high risk first, waiting time, referral status.
  await page.goto(`${base}/?lang=${lang}#/worklist`);
  await page.waitForSelector('#wl-items li');
  // Going to #/worklist only changes the hash: the list drawn before the decision can still be on
  // screen for a moment, so wait (bounded) for the refreshed one before reading it.
  await page.waitForFunction((want) => {
    const li = document.querySelector('#wl-items li:first-child');
    return li && li.textContent.includes(want);
  }, T.referral_requested, { timeout: 15000 }).catch(() => {});
  const first = await page.textContent('#wl-items li:first-child');
  check(first.includes(T.cat_high), `${lang}: high risk first in the worklist`);
  check(first.includes(T.referral_requested) && first.includes(T.waiting), `${lang}: waiting time and referral shown`);
  await shot(page, `${lang}-06-worklist`);
  // Bulk export is the data steward's alone (issue 13): a clinician sees no export button,
  // not even by going to the export screen's address.
  const noExport = async () => !(await page.isVisible('#export-csv')) && !(await page.isVisible('#export-json')) &&
    !(await page.isVisible('#nav-export'));
  check(await noExport(), `${lang}: no export buttons on a clinician's worklist`);
  await page.goto(`${base}/?lang=${lang}#/export`);
  await page.waitForSelector('#screen-worklist:not([hidden])');
  check(await noExport(), `${lang}: #/export shows a clinician the worklist, without export buttons`);

  // The PDF letter, once the node serves it.
  const pdf = await page.request.get(`${base}/api/v1/cases/${caseId}/report.pdf?lang=${lang}`);
  if (pdf.status() === 200) {
    const body = await pdf.body();
    check(body.slice(0, 5).toString() === '%PDF-', `${lang}: letter is a PDF`);
    fs.writeFileSync(path.join(ART, `${lang}-letter.pdf`), body);
    const fhir = await page.request.get(`${base}/api/v1/cases/${caseId}/fhir`);
    check(fhir.status() === 200 && (await fhir.json()).resourceType === 'Bundle', `${lang}: FHIR bundle served`);
    const csv = await page.request.get(`${base}/api/v1/export?format=csv`);
    const csvText = await csv.text();
    // Bulk export is the data steward's permission alone (issue 13): a clinician is refused.
    check(csv.status() === 403 && !csvText.includes(ref), `${lang}: bulk export refused to a clinician (${csv.status()})`);
    const badLang = await page.request.get(`${base}/api/v1/cases/${caseId}/report.pdf?lang=de`);
    check(badLang.status() === 400, `${lang}: unknown letter language refused (${badLang.status()})`);
  } else {
    console.log(`  note ${lang}: report.pdf answered ${pdf.status()} (route not served yet)`);
  }

  // Accessibility basics: every control has a label, the language buttons say which is on.
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
    .filter((el) => el.type !== 'hidden' && !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
    .map((el) => el.id || el.name));
  check(unlabelled.length === 0, `${lang}: unlabelled controls: ${unlabelled.join(', ')}`);
  check(await page.getAttribute(`.lang[data-lang="${lang}"]`, 'aria-pressed') === 'true', `${lang}: language button pressed`);
  check(errors.length === 0, `${lang}: page errors: ${errors.join(' | ')}`);
  await page.close();
}

async function adminFlow(ctx, base) {
  const T = cat('fr');
  const page = await freshPage(ctx);
  await signIn(page, base, 'fr', 'admin1');
  await page.waitForSelector('#screen-users:not([hidden])');
  await page.fill('#nu-name', 'derm2');
  await page.selectOption('#nu-role', 'dermatologist');
  await page.fill('#nu-pass', 'short');
  await page.click('#user-form button[type=submit]');
  check(await page.textContent('#user-error') === T.need_password, 'admin: short password refused');
  await page.fill('#nu-pass', 'long-enough-1');
  await page.click('#user-form button[type=submit]');
  await page.waitForFunction(() => document.getElementById('users-body').textContent.includes('derm2'));
  check((await page.textContent('#users-body')).includes(T.role_dermatologist), 'admin: new user listed with role');
  // Switch language on this screen: everything follows, including the table.
  await page.click('.lang[data-lang="ar"]');
  await page.waitForFunction(() => document.documentElement.dir === 'rtl');
  check((await page.textContent('#users-title')) === cat('ar').users_title, 'admin: language switch on the screen');
  check((await page.textContent('#users-body')).includes(cat('ar').role_dermatologist), 'admin: table re-rendered in Arabic');
  check((await page.textContent('#who-name')).includes(cat('ar').role_admin), 'admin: signed-in role re-rendered in Arabic');
  await shot(page, 'ar-07-users');
  // Issue 10 item 11, in both languages: menus that lead somewhere, duplicate username,
  // the password policy, the last active admin.
  for (const lang of ['ar', 'fr']) {
    const L = cat(lang);
    await page.click(`.lang[data-lang="${lang}"]`);
    await page.waitForFunction((l) => document.documentElement.lang === l, lang);
    check(await page.isHidden('#nav-worklist') && await page.isHidden('#nav-new') && await page.isVisible('#nav-users'),
      `${lang} admin: only the entries an admin can use`);
    await page.fill('#nu-name', 'gp1');
    await page.selectOption('#nu-role', 'gp');
    await page.fill('#nu-pass', 'cedar lake stone');
    await page.click('#user-form button[type=submit]');
    const dup = L.user_exists.replace('{name}', 'gp1');
    await page.waitForFunction((t) => document.getElementById('user-error').textContent === t, dup).catch(() => {});
    check(await page.textContent('#user-error') === dup, `${lang} admin: duplicate username explained`);
    for (const [pw, key] of [['password', 'password_common'], ['nurse9', 'need_password'], ['nurse9nurse9', null]]) {
      await page.fill('#nu-name', 'nurse9');
      await page.fill('#nu-pass', pw);
      await page.click('#user-form button[type=submit]');
      const want = key ? L[key] : L.password_refused;
      await page.waitForFunction((t) => document.getElementById('user-error').textContent.startsWith(t), want).catch(() => {});
      const msg = await page.textContent('#user-error');
      check(key ? msg === L[key] : msg.startsWith(L.password_refused), `${lang} admin: password ${pw} refused (${msg})`);
    }
    const rows = await page.$$eval('#users-body tr', (trs) => trs.map((tr) => [tr.cells[0].textContent, !!tr.querySelector('button')]));
    check(rows.some(([n, b]) => n === 'admin1' && !b), `${lang} admin: the last active admin has no disable button`);
  }
  const api = await fetch(`${base}/api/v1/session`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'admin1', password: PASS }) });
  const cookies = api.headers.getSetCookie().map((c) => c.split(';')[0]);
  const csrf = (cookies.find((c) => c.startsWith('basira_csrf=')) || '=').split('=')[1];
  const dis = await fetch(`${base}/api/v1/users/admin1`, { method: 'PATCH', headers: { Cookie: cookies.join('; '), 'X-CSRF-Token': csrf, 'Content-Type': 'application/json', 'Accept-Language': 'fr' }, body: '{"disabled": true}' });
  check(dis.status === 409, `admin: the node refuses to disable the last active admin (${dis.status})`);
  await page.close();
}

function catalogueChecks() {
  const langs = ['fr', 'ar', 'en'].map((l) => [l, cat(l)]);
  const keys = Object.keys(langs[2][1]).sort().join('\n');
  for (const [l, c] of langs) {
    check(Object.keys(c).sort().join('\n') === keys, `catalogue ${l} has the same keys as en`);
    for (const [k, v] of Object.entries(c)) check(typeof v === 'string' && v.length > 0, `${l}.${k} is empty`);
  }
  // Every key used by the HTML exists.
  const html = fs.readFileSync(path.join(SRC, 'web', 'index.html'), 'utf8');
  const used = [...html.matchAll(/data-i18n="([a-z0-9_]+)"/g)].map((m) => m[1])
    .concat([...html.matchAll(/data-i18n-attr="([^"]+)"/g)].flatMap((m) => m[1].split(';').map((p) => p.split(':')[1])));
  // Every script the page loads (so a new file of the app is checked without editing this list).
  const js = [...html.matchAll(/<script src="\/app\/([a-z]+\.js)"/g)].map((m) => m[1])
    .map((f) => fs.readFileSync(path.join(SRC, 'web', f), 'utf8')).join('\n');
  const usedJs = [...js.matchAll(/\bt\('([a-z0-9_]+)'\s*[,)]/g)].map((m) => m[1]);
  for (const k of used.concat(usedJs)) check(k in langs[2][1], `key "${k}" used but missing from the catalogues`);
  check(cat('fr').disclaimer.startsWith('Aide à la décision, pas un diagnostic'), 'fr disclaimer wording');
}

// The data steward (bulk export, nothing clinical) sees the export buttons, and only them.
async function stewardFlow(ctx, base) {
  const T = cat('fr');
  const page = await freshPage(ctx);
  await signIn(page, base, 'fr', 'steward1');
  await page.waitForSelector('#screen-export:not([hidden])');
  check(await page.isVisible('#export-csv') && await page.isVisible('#export-json'), 'data steward: export buttons shown');
  check(await page.isVisible('#nav-export') && !(await page.isVisible('#nav-worklist')) &&
    !(await page.isVisible('#nav-new')) && !(await page.isVisible('#nav-users')), 'data steward: export in the menu, no clinical entry');
  check((await page.textContent('#export-title')) === T.export_title, 'data steward: export screen in French');
  const csv = await page.request.get(`${base}/api/v1/export?format=csv`);
  check(csv.status() === 200, `data steward: bulk export served (${csv.status()})`);
  await shot(page, 'fr-07-steward-export');
  await page.close();
}

async function main() {
  catalogueChecks();
  cliRun(['user', 'add', '--data', data, '--key-file', key, '--role', 'admin', '--password-file', pw, 'admin1']);
  cliRun(['user', 'add', '--data', data, '--key-file', key, '--role', 'nurse', '--password-file', pw, 'nurse1']);
  cliRun(['user', 'add', '--data', data, '--key-file', key, '--role', 'gp', '--password-file', pw, 'gp1']);
  cliRun(['user', 'add', '--data', data, '--key-file', key, '--role', 'dermatologist', '--password-file', pw, 'derm1']);
  cliRun(['user', 'add', '--data', data, '--key-file', key, '--role', 'data_steward', '--password-file', pw, 'steward1']);

  // The model: the bundled one, else the triage tests' tiny random model, else none (503).
  const extra = [];
  const bundled = fs.existsSync(path.join(SRC, 'models', 'basira-derm.safetensors'));
  if (!bundled && fixturesTool && fs.existsSync(fixturesTool)) {
    const r = spawnSync(fixturesTool, [tmp], { stdio: 'ignore' });
    if (r.status === 0) {
      extra.push('--model', path.join(tmp, 'tiny.safetensors'));
      console.log('  bundled model absent: using the tiny test model (results are random)');
    }
  }
  const port = await freePort();
  const log = fs.openSync(path.join(tmp, 'serve.log'), 'w');
  const srv = spawn(cli, ['serve', '--data', data, '--key-file', key, '--listen', `127.0.0.1:${port}`,
    '--access-log', path.join(tmp, 'access.log'), ...extra], { env, stdio: ['ignore', log, log] });
  let proxy = null, browser = null;
  try {
    const health = await waitHealth(port);
    let base = `http://127.0.0.1:${port}`;
    const home = await fetch(base + '/');
    if (home.status !== 200) {
      proxy = await startProxy(port);
      base = `http://127.0.0.1:${proxy.address().port}`;
      console.log('  note: basira serve does not serve the app yet; using a static proxy');
    } else {
      const csp = home.headers.get('content-security-policy') || '';
      check(/default-src 'self'/.test(csp), `CSP header on / (${csp})`);
      check((home.headers.get('content-type') || '').startsWith('text/html'), 'index served as HTML');
      for (const bad of ['/app/../../etc/passwd', '/app/%2e%2e/%2e%2e/etc/passwd', '/app/..%2fCMakeLists.txt', '/app/i18n/%00fr.json']) {
        const r = await fetch(base + bad);
        check(r.status === 404 || r.status === 400 || r.status === 403, `traversal ${bad} refused (${r.status})`);
      }
      const js = await fetch(base + '/app/app.js');
      check((js.headers.get('content-type') || '').includes('javascript'), 'app.js content type');
    }
    let photo = null;
    const dd = process.env.BASIRA_DATA;
    const photoPath = dd && path.join(dd, 'ham10000', 'images', 'ISIC_0024306.jpg');
    if (photoPath && fs.existsSync(photoPath)) photo = fs.readFileSync(photoPath);
    const canAnalyse = !!health.analysis;
    if (!canAnalyse) console.log('  note: the node has no model: photo analysis answers 503');

    // launchPersistentContext passes the new, empty profile folder as --user-data-dir.
    browser = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(tmp, 'chromium-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 1,
      acceptDownloads: true,
    });
    // Generous: CI machines are shared and chromium can be slow to start there.
    browser.setDefaultTimeout(90000);
    // WEB_FLOWS=fr,ar,admin (default: all) runs a part, when working on one screen.
    const flows = (process.env.WEB_FLOWS || 'fr,ar,admin,steward,workflow').split(',');
    for (const lang of ['fr', 'ar'].filter((l) => flows.includes(l))) {
      const t0 = Date.now();
      await flow(browser, base, lang, photo, canAnalyse);
      console.log(`  flow ${lang}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    if (flows.includes('admin')) await adminFlow(browser, base);
    if (flows.includes('steward')) await stewardFlow(browser, base);
    if (flows.includes('workflow')) {
      // English too: its catalogue's wording is checked the same way.
      for (const lang of ['fr', 'ar', 'en']) {
        const t0 = Date.now();
        await browser.clearCookies();
        await workflowFlow(browser, base, lang, photo, canAnalyse, { check, signIn, signOut, shot, cat, PASS, blurred });
        console.log(`  workflow ${lang}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      }
    }
  } finally {
    if (browser) await browser.close();
    if (proxy) proxy.close();
    srv.kill('SIGTERM');
    await new Promise((r) => srv.once('exit', r));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`${checks} checks, ${failures} failed; screenshots in ${ART}`);
  process.exit(failures ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
