// hub_browser_test.js - the hub's web app in headless Debian chromium (playwright-core),
// against a real hub with synced cases (set up by test_hub_web.sh).
//   node hub_browser_test.js HUB_URL NODE CASE_HIGH CASE_LOW ARTEFACTS
// A dermatologist in French: sign in, worklist ordered by category, photo thumbnail, case
// view with the AI result and a zoomable photo, a reply sent; in Arabic: RTL layout and the
// Arabic labels, Latin text isolated; an auditor: the nodes' chains, verified; a wrong
// password is refused; the auditor's indicators dashboard (plots, filters, CSV and PDF, fr/ar/en).
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
const [hub, node, caseHigh, caseLow, art] = process.argv.slice(2);
fs.mkdirSync(art, { recursive: true });
let failures = 0;
function check(cond, what) {
  console.log((cond ? 'ok   ' : 'FAIL ') + what);
  if (!cond) failures++;
}

(async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // Refused requests (the wrong password, a dermatologist probing the auditors' list) are expected.
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text()); });
  await page.goto(hub + '/');
  await page.selectOption('#lang', 'fr');
  check(await page.textContent('#login h2') === 'Se connecter', 'sign-in page in French');

  await page.fill('#user', 'drA');
  await page.fill('#pass', 'wrong-password');
  await page.click('#login-form button');
  await page.waitForSelector('#login-error:not(:empty)');
  check((await page.textContent('#login-error')).includes('incorrect'), 'wrong password refused, in French');

  await page.fill('#user', 'drA');
  await page.fill('#pass', 'derm-password-1');
  await page.click('#login-form button');
  await page.waitForSelector('#cases tbody tr');
  const cats = await page.$$eval('#cases tbody tr .cat', (xs) => xs.map((x) => x.dataset.category));
  check(cats.length === 2 && cats[0] === 'high', 'worklist: 2 cases, the high-risk one first (' + cats.join(',') + ')');
  await page.waitForFunction(() => [...document.querySelectorAll('#cases img.thumb')].some((i) => i.naturalWidth > 0));
  check(true, 'thumbnail loaded with the credentials (blob URL under the CSP)');
  check(await page.textContent('#cases thead') .then((s) => s.includes('Catégorie') && s.includes('Attente')), 'French column headings');
  await page.screenshot({ path: path.join(art, 'hub-worklist-fr.png') });

  await page.click(`#cases tbody tr[data-case="${caseHigh}"]`);
  await page.waitForSelector('#photos img');
  await page.waitForFunction(() => document.querySelector('#photos img').naturalWidth > 0);
  check((await page.textContent('#case-body')).includes('Résultat de l\'IA'), 'case view shows the AI result');
  check((await page.textContent('#case-body')).includes('Indice de risque'), 'with its risk index');
  await page.click('#photos img');
  check(await page.$eval('#photos img', (i) => i.classList.contains('zoomed')), 'photo zooms on click');
  await page.selectOption('#plan', 'biopsy');
  await page.fill('#diagnosis', 'mélanome suspecté');
  await page.fill('#message', 'Adresser pour biopsie-exérèse sous 15 jours.');
  await page.click('#reply-form button');
  await page.waitForSelector('#reply-status.ok');
  check((await page.textContent('#case-body')).includes('mélanome suspecté'), 'reply sent and shown in the case');
  await page.screenshot({ path: path.join(art, 'hub-case-fr.png'), fullPage: true });
  // The stored original: a dermatologist asks for it from the case view (it goes down to the node).
  check(await page.isVisible('#photos button.request-original'), 'the case view offers to request the original');
  await page.click('#photos button.request-original');
  await page.waitForSelector('#photos span.ok');
  check((await page.textContent('#photos span.ok')).includes('Original demandé'), 'original requested, said in French');

  await page.selectOption('#lang', 'ar');
  await page.waitForFunction(() => document.documentElement.dir === 'rtl');
  check(await page.textContent('#reply-form h3') === 'ردّك على العيادة', 'Arabic labels');
  const dir = await page.$eval('#case-body', (e) => getComputedStyle(e).direction);
  check(dir === 'rtl', 'Arabic case view laid out right to left');
  check(await page.$eval('#case-title bdi', (e) => e.textContent) === node, 'Latin node name isolated in <bdi>');
  await page.screenshot({ path: path.join(art, 'hub-case-ar.png'), fullPage: true });
  await page.click('#back');
  await page.waitForSelector('#cases tbody tr');
  check(await page.textContent('#cases thead').then((s) => s.includes('الفئة')), 'Arabic worklist headings');
  const replyCell = await page.$eval(`#cases tbody tr[data-case="${caseHigh}"] td:last-child`, (e) => e.textContent);
  check(replyCell === 'خزعة', 'worklist shows the reply\'s plan in Arabic');

  // The auditor: each node's audit chain.
  const p2 = await browser.newPage();
  await p2.goto(hub + '/');
  await p2.selectOption('#lang', 'en');
  await p2.fill('#user', 'audA');
  await p2.fill('#pass', 'audit-password-1');
  await p2.click('#login-form button');
  // The login shows its first view (the worklist) once its request returns; a click on
  // the nodes' tab before that was undone by it (a flaky wait for the node table).
  await p2.waitForFunction(() => !document.getElementById('worklist').hidden || !document.getElementById('nodes').hidden);
  await p2.click('#tab-nodes');
  await p2.waitForSelector('#node-table tbody tr');
  const chain = await p2.$eval(`#node-table tbody tr[data-node="${node}"] td:nth-child(2)`, (e) => e.textContent);
  check(chain === 'verified', 'auditor sees the node\'s chain verified');
  await p2.screenshot({ path: path.join(art, 'hub-nodes-en.png') });

  // The auditor's dashboard: the indicators plotted per week (SVG drawn by the app), filters,
  // CSV and PDF exports, in English, French and Arabic.
  check(await p2.isVisible('#tab-ind'), 'auditor has the indicators tab');
  await p2.click('#tab-ind');
  await p2.waitForSelector('#ind-plots svg.plot');
  check(await p2.$$eval('#ind-plots svg.plot', (x) => x.length) === 12, 'one plot per indicator (12)');
  check(await p2.$$eval('#ind-table tbody tr', (x) => x.length) === 12, 'a table row per indicator');
  check(await p2.$eval('#ind-table', (e) => e.dataset.cases) === '2', 'both synced cases counted');
  const week = await p2.$$eval('svg.plot[data-id="cases_per_gp_week"] circle', (x) => x.map((c) => c.dataset.key));
  check(week.length === 1 && /^\d{4}-W\d\d$/.test(week[0]), 'the week of the cases is plotted (' + week.join(',') + ')');
  const gpWeek = await p2.textContent('#ind-table tr[data-id="cases_per_gp_week"] td:nth-child(2)');
  await p2.selectOption('#f-sex', 'female');
  await p2.waitForFunction(() => document.querySelector('#ind-table').dataset.cases === '1');
  const gpWeekF = await p2.textContent('#ind-table tr[data-id="cases_per_gp_week"] td:nth-child(2)');
  check(gpWeek.trim() === '1.00' && gpWeekF.trim() === '—', 'the sex filter changes the figures (' + gpWeek + ' → ' + gpWeekF + ')');
  await p2.selectOption('#f-sex', '');
  await p2.waitForFunction(() => document.querySelector('#ind-table').dataset.cases === '2');
  await p2.screenshot({ path: path.join(art, 'hub-indicators-en.png'), fullPage: true });
  const [csv] = await Promise.all([p2.waitForEvent('download'), p2.click('#ind-csv')]);
  const csvText = fs.readFileSync(await csv.path(), 'utf8');
  check(csvText.startsWith('group,id,name') && csvText.includes('cases_per_gp_week') && csv.suggestedFilename() === 'basira-indicators.csv', 'CSV export downloads');
  await p2.selectOption('#lang', 'fr');
  await p2.waitForFunction(() => document.querySelector('#ind-table thead').textContent.includes('Indicateur'));
  await p2.waitForFunction(() => document.querySelector('#ind-table tbody').textContent.includes('Délai entre la première consultation'));
  check(true, 'indicators in French');
  const [pdf] = await Promise.all([p2.waitForEvent('download'), p2.click('#ind-pdf')]);
  const pdfBytes = fs.readFileSync(await pdf.path());
  check(pdfBytes.slice(0, 5).toString() === '%PDF-' && pdfBytes.length > 2000, 'PDF export downloads (' + pdfBytes.length + ' bytes)');
  await p2.selectOption('#lang', 'ar');
  await p2.waitForFunction(() => document.documentElement.dir === 'rtl' && document.querySelector('#ind-table tbody').textContent.includes('المدة من الزيارة الأولى'));
  check(await p2.$eval('#indicators', (e) => getComputedStyle(e).direction) === 'rtl', 'Arabic dashboard laid out right to left');
  check(await p2.$eval('svg.plot text.tick', (e) => e.getAttribute('text-anchor')) === 'end', 'plots mirrored in Arabic (scale on the right)');
  await p2.screenshot({ path: path.join(art, 'hub-indicators-ar.png'), fullPage: true });
  const p3 = await browser.newPage();
  await p3.goto(hub + '/');
  await p3.fill('#user', 'drA');
  await p3.fill('#pass', 'derm-password-1');
  await p3.click('#login-form button');
  await p3.waitForSelector('#cases tbody tr');
  check(!(await p3.isVisible('#tab-ind')), 'a dermatologist has no indicators tab');
  check(errors.length === 0, 'no script errors (' + errors.join('; ') + ')');
  await browser.close();
  process.exit(failures ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(1); });
