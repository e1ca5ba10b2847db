// hub.js - the regional hub's web app: dermatologists' worklist across clinics, the case
// view (photos zoomable, AI result with its explanation, history, earlier lesions), the
// reply form, and the auditors' view of each node's audit chain. French, Arabic (RTL,
// embedded Latin text isolated in <bdi>) and English, chosen per user in the page.
// Talks to the hub's JSON API with a sign-in session (HttpOnly cookie, CSRF token kept in memory).
'use strict';

const T = {
  en: {
    title: 'Basira — regional hub', signin: 'Sign in', username: 'Username', password: 'Password',
    logout: 'Sign out', worklist: 'Worklist', nodes: 'Clinics and audit chains',
    order: 'Ordered by category (high first), AI risk index, then waiting time.',
    category: 'Category', risk: 'Risk index', waiting: 'Waiting', clinic: 'Clinic', age: 'Age',
    site: 'Site', reply: 'Reply', empty: 'No case is waiting.', back: '← Worklist',
    reply_title: 'Your reply to the clinic', plan: 'Plan', diagnosis: 'Diagnosis',
    message: 'Message to the GP', send: 'Send the reply', sent: 'Reply recorded; the clinic receives it at its next sync.',
    urgent_visit: 'Urgent in-person visit', biopsy: 'Biopsy', follow_up: 'Follow-up', reassure: 'Reassure',
    high: 'high', medium: 'medium', low: 'low', none: 'none', bad_login: 'Wrong username or password.',
    ai: 'AI result', candidates: 'Most likely conditions', raised: 'Category raised by',
    history: 'History', decisions: 'Clinicians\' decisions', replies: 'Replies', earlier: 'Earlier lesions of this patient',
    sex: 'Sex', patient: 'Patient', chain: 'Audit chain', entries: 'Entries', last_seq: 'Last change',
    last_seen: 'Last seen', head: 'Head hash', verified: 'verified', broken: 'BROKEN',
    changed: 'changed', bleeding: 'bleeding', itching: 'itching', yes: 'yes', no: 'no', unknown: 'not asked',
    minutes: 'min', hours: 'h', days: 'd', error: 'Error',
    original: 'Stored original', request_original: 'Request the original photo',
    original_requested: 'Original requested; the clinic sends it at its next sync.',
    signed_out: 'You were signed out; please sign in again.', locked: 'Too many failed sign-ins: try again later.',
    indicators: 'Indicators', period: 'Period', week: 'per week', month: 'per month', all: 'all', female: 'female', male: 'male', phototype: 'Phototype group', pt_light: 'light (I–II)', pt_medium: 'medium (III–IV)', pt_dark: 'dark (V–VI)', age_band: 'Age band', from: 'From', to: 'To', csv: 'Export CSV', pdf: 'Export PDF', indicator: 'Indicator', value: 'Value (all)', interval: '95% interval', ind_hint: 'Each case counts at its first visit. Proportions with their Wilson 95% interval, medians with their order-statistic interval (definitions: docs/indicators.md).', no_data: 'no data',
  },
  fr: {
    title: 'Basira — hub régional', signin: 'Se connecter', username: 'Identifiant', password: 'Mot de passe',
    logout: 'Se déconnecter', worklist: 'Liste de travail', nodes: 'Cliniques et chaînes d\'audit',
    order: 'Triée par catégorie (élevée d\'abord), indice de risque IA, puis temps d\'attente.',
    category: 'Catégorie', risk: 'Indice de risque', waiting: 'Attente', clinic: 'Clinique', age: 'Âge',
    site: 'Siège', reply: 'Réponse', empty: 'Aucun cas en attente.', back: '← Liste de travail',
    reply_title: 'Votre réponse à la clinique', plan: 'Conduite', diagnosis: 'Diagnostic',
    message: 'Message au médecin généraliste', send: 'Envoyer la réponse', sent: 'Réponse enregistrée ; la clinique la recevra à sa prochaine synchronisation.',
    urgent_visit: 'Consultation urgente en présentiel', biopsy: 'Biopsie', follow_up: 'Suivi', reassure: 'Rassurer',
    high: 'élevée', medium: 'moyenne', low: 'faible', none: 'aucune', bad_login: 'Identifiant ou mot de passe incorrect.',
    ai: 'Résultat de l\'IA', candidates: 'Affections les plus probables', raised: 'Catégorie relevée par',
    history: 'Anamnèse', decisions: 'Décisions des cliniciens', replies: 'Réponses', earlier: 'Lésions antérieures de ce patient',
    sex: 'Sexe', patient: 'Patient', chain: 'Chaîne d\'audit', entries: 'Entrées', last_seq: 'Dernière modification',
    last_seen: 'Vu pour la dernière fois', head: 'Empreinte de tête', verified: 'vérifiée', broken: 'ROMPUE',
    changed: 'a changé', bleeding: 'saigne', itching: 'démange', yes: 'oui', no: 'non', unknown: 'non demandé',
    minutes: 'min', hours: 'h', days: 'j', error: 'Erreur',
    original: 'Original conservé', request_original: 'Demander la photo originale',
    original_requested: 'Original demandé\u202f; la clinique l\u2019enverra à sa prochaine synchronisation.',
    signed_out: 'Vous avez été déconnecté\u202f; reconnectez-vous.', locked: 'Trop d\u2019échecs de connexion\u202f: réessayez plus tard.',
    indicators: 'Indicateurs', period: 'Période', week: 'par semaine', month: 'par mois', all: 'tous', female: 'femme', male: 'homme', phototype: 'Groupe de phototype', pt_light: 'clair (I–II)', pt_medium: 'intermédiaire (III–IV)', pt_dark: 'foncé (V–VI)', age_band: 'Tranche d\'âge', from: 'Du', to: 'Au', csv: 'Exporter en CSV', pdf: 'Exporter en PDF', indicator: 'Indicateur', value: 'Valeur (tous)', interval: 'Intervalle à 95\u202f%', ind_hint: 'Chaque cas compte à sa première consultation. Proportions avec leur intervalle de Wilson à 95\u202f%, médianes avec leur intervalle par statistiques d\'ordre (définitions\u202f: docs/indicators.md).', no_data: 'aucune donnée',
  },
  ar: {
    title: 'بصيرة — المركز الإقليمي', signin: 'تسجيل الدخول', username: 'اسم المستخدم', password: 'كلمة المرور',
    logout: 'تسجيل الخروج', worklist: 'قائمة العمل', nodes: 'العيادات وسلاسل التدقيق',
    order: 'مرتبة حسب الفئة (المرتفعة أولًا)، ثم مؤشر الخطر، ثم مدة الانتظار.',
    category: 'الفئة', risk: 'مؤشر الخطر', waiting: 'الانتظار', clinic: 'العيادة', age: 'العمر',
    site: 'الموضع', reply: 'الرد', empty: 'لا توجد حالة في الانتظار.', back: 'قائمة العمل →',
    reply_title: 'ردّك على العيادة', plan: 'الخطة', diagnosis: 'التشخيص',
    message: 'رسالة إلى الطبيب العام', send: 'إرسال الرد', sent: 'سُجّل الرد؛ ستستلمه العيادة في مزامنتها القادمة.',
    urgent_visit: 'زيارة حضورية عاجلة', biopsy: 'خزعة', follow_up: 'متابعة', reassure: 'طمأنة',
    high: 'مرتفعة', medium: 'متوسطة', low: 'منخفضة', none: 'لا شيء', bad_login: 'اسم المستخدم أو كلمة المرور غير صحيحة.',
    ai: 'نتيجة الذكاء الاصطناعي', candidates: 'الحالات الأكثر احتمالًا', raised: 'رُفعت الفئة بسبب',
    history: 'السوابق', decisions: 'قرارات الأطباء', replies: 'الردود', earlier: 'آفات سابقة لهذا المريض',
    sex: 'الجنس', patient: 'المريض', chain: 'سلسلة التدقيق', entries: 'المدخلات', last_seq: 'آخر تغيير',
    last_seen: 'آخر ظهور', head: 'بصمة الرأس', verified: 'موثَّقة', broken: 'مكسورة',
    changed: 'تغيّرت', bleeding: 'تنزف', itching: 'تحكّ', yes: 'نعم', no: 'لا', unknown: 'لم يُسأل',
    minutes: 'د', hours: 'س', days: 'ي', error: 'خطأ',
    original: 'الأصل المحفوظ', request_original: 'طلب الصورة الأصلية',
    original_requested: 'طُلب الأصل؛ سترسله العيادة في مزامنتها القادمة.',
    signed_out: 'سُجّل خروجك؛ يرجى تسجيل الدخول مجددًا.', locked: 'محاولات دخول فاشلة كثيرة: أعد المحاولة لاحقًا.',
    indicators: 'المؤشرات', period: 'الفترة', week: 'أسبوعيًا', month: 'شهريًا', all: 'الكل', female: 'أنثى', male: 'ذكر', phototype: 'فئة النمط الضوئي', pt_light: 'فاتح (I–II)', pt_medium: 'متوسط (III–IV)', pt_dark: 'داكن (V–VI)', age_band: 'الفئة العمرية', from: 'من', to: 'إلى', csv: 'تصدير CSV', pdf: 'تصدير PDF', indicator: 'المؤشر', value: 'القيمة (الكل)', interval: 'مجال الثقة 95%', ind_hint: 'تُحسب كل حالة في زيارتها الأولى. النسب مع مجال ويلسون 95%، والوسيطات مع مجالها بإحصاءات الرتبة (التعاريف: docs/indicators.md).', no_data: 'لا بيانات',
  },
};

const $ = (id) => document.getElementById(id);
let lang = (localStorage.getItem('basira-hub-lang') || navigator.language || 'fr').slice(0, 2);
if (!T[lang]) lang = 'fr';
let auth = null; // the session: { csrf, role } once signed in (the session cookie is HttpOnly)
let current = null;
const t = (k) => (T[lang][k] !== undefined ? T[lang][k] : k);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? '' : String(k)));
  return e;
}
// Latin text (node names, references, numbers) inside Arabic: isolated so it reads right.
const bdi = (s) => el('bdi', {}, s == null ? '—' : String(s));

function applyLang() {
  document.documentElement.lang = lang;
  document.documentElement.dir = lang === 'ar' ? 'rtl' : 'ltr';
  document.title = t('title');
  for (const n of document.querySelectorAll('[data-t]')) n.textContent = t(n.dataset.t);
  $('lang').value = lang;
  if (current) openCase(current.node, current.case_id);
  else if (auth && !$('worklist').hidden) loadWorklist();
  else if (auth && !$('nodes').hidden) loadNodes();
  else if (auth && !$('indicators').hidden) loadIndicators();
}

async function api(method, path, body) {
  const headers = { 'Accept-Language': lang, ...(body ? { 'Content-Type': 'application/json' } : {}) };
  if (method !== 'GET' && auth) headers['X-CSRF-Token'] = auth.csrf;
  const r = await fetch('/api/v1/' + path, {
    method, headers, body: body ? JSON.stringify(body) : undefined, cache: 'no-store', credentials: 'same-origin',
  });
  const j = r.headers.get('Content-Type') && r.headers.get('Content-Type').includes('json') ? await r.json() : null;
  if (r.status === 401 && auth && path !== 'session') signedOut();
  return { status: r.status, json: j, res: r };
}

// The session ended (idle sign-out, or signed out elsewhere): back to the sign-in form.
function signedOut() {
  auth = null;
  current = null;
  for (const b of ['tab-worklist', 'tab-nodes', 'logout']) $(b).hidden = true;
  show('login');
  $('login-error').textContent = t('signed_out');
}

async function photoUrl(sha) {
  const r = await fetch('/api/v1/photos/' + sha, { credentials: 'same-origin', cache: 'no-store' });
  return r.ok ? URL.createObjectURL(await r.blob()) : '';
}

function show(id) {
  for (const s of ['login', 'worklist', 'case', 'nodes', 'indicators']) $(s).hidden = s !== id;
}

function waiting(sec) {
  if (sec == null) return '—';
  if (sec < 3600) return Math.max(0, Math.round(sec / 60)) + ' ' + t('minutes');
  if (sec < 86400) return Math.round(sec / 3600) + ' ' + t('hours');
  return Math.round(sec / 86400) + ' ' + t('days');
}

function catBadge(c) {
  return el('span', { class: 'cat cat-' + (c || 'none'), 'data-category': c || 'none' }, t(c || 'none'));
}

async function loadWorklist() {
  current = null;
  const r = await api('GET', 'cases');
  if (r.status !== 200) return;
  show('worklist');
  const tb = $('cases').tBodies[0];
  tb.replaceChildren();
  $('empty').hidden = r.json.items.length > 0;
  for (const c of r.json.items) {
    const img = el('img', { class: 'thumb', alt: '' });
    if (c.thumbnail) photoUrl(c.thumbnail).then((u) => { if (u) img.src = u; });
    const tr = el('tr', { 'data-node': c.node, 'data-case': c.case_id, onclick: () => openCase(c.node, c.case_id) },
      el('td', {}, img), el('td', {}, catBadge(c.category)),
      el('td', {}, bdi(c.risk_index == null ? '—' : Math.round(c.risk_index))),
      el('td', {}, bdi(waiting(c.waiting_s))), el('td', {}, bdi(c.node)), el('td', {}, bdi(c.age)),
      el('td', {}, bdi(c.body_site)), el('td', {}, c.reply ? t(c.reply.plan) : '—'));
    tb.append(tr);
  }
}

function tri(v) { return v === true ? t('yes') : v === false ? t('no') : t('unknown'); }

async function openCase(node, id) {
  const r = await api('GET', 'cases/' + encodeURIComponent(node) + '/' + id);
  if (r.status !== 200) return;
  const c = r.json;
  current = { node, case_id: id };
  show('case');
  $('case-title').replaceChildren(bdi(c.node), ' / ', bdi(c.case_id), ' — ', catBadge(c.category));
  const photos = $('photos');
  photos.replaceChildren();
  for (const im of c.images) {
    if (!im.photo) continue;
    const img = el('img', { alt: t('ai'), 'data-sha': im.photo, onclick: (e) => e.target.classList.toggle('zoomed') });
    photoUrl(im.photo).then((u) => { if (u) img.src = u; });
    photos.append(img);
    if (im.original) {
      // The stored original, once the clinic sent it: shown at full size on request.
      const o = el('button', { type: 'button', class: 'original', 'data-sha': im.original }, t('original'));
      o.addEventListener('click', async () => {
        const u = await photoUrl(im.original);
        if (u) { img.src = u; img.classList.add('zoomed'); }
      });
      photos.append(o);
    } else if (auth && auth.role === 'dermatologist') {
      const q = el('button', { type: 'button', class: 'request-original', 'data-image': String(im.image_id) },
        t('request_original'));
      q.addEventListener('click', async () => {
        const r = await api('POST', 'cases/' + encodeURIComponent(node) + '/' + id + '/original', { image_id: im.image_id });
        q.replaceWith(el('span', { class: r.status === 202 ? 'ok' : 'error' },
          r.status === 202 ? t('original_requested') : t('error') + ': ' + (r.json && r.json.error ? r.json.error.message : r.status)));
      });
      photos.append(q);
    }
  }
  const body = $('case-body');
  body.replaceChildren();
  const h = c.history || {};
  body.append(el('dl', {},
    el('dt', {}, t('patient')), el('dd', {}, bdi(c.patient_ref)),
    el('dt', {}, t('age')), el('dd', {}, bdi(c.age)),
    el('dt', {}, t('sex')), el('dd', {}, bdi(c.sex)),
    el('dt', {}, t('site')), el('dd', {}, bdi(c.body_site)),
    el('dt', {}, t('history')), el('dd', {}, `${t('changed')}: ${tri(h.changed)} · ${t('bleeding')}: ${tri(h.bleeding)} · ${t('itching')}: ${tri(h.itching)}`),
    el('dt', {}, t('waiting')), el('dd', {}, bdi(waiting(c.waiting_s)))));
  for (const im of c.images) {
    const risk = im.result && im.result.risk;
    if (!risk) continue;
    const sec = el('section', { class: 'ai' }, el('h3', {}, t('ai')),
      el('p', {}, t('risk'), ': ', bdi(risk.index), ' — ', catBadge(risk.category)));
    if (risk.raised_by && risk.raised_by.length) sec.append(el('p', {}, t('raised') + ': ', bdi(risk.raised_by.join(', '))));
    const cands = im.result.candidates || [];
    if (cands.length) {
      sec.append(el('h4', {}, t('candidates')));
      const ul = el('ul');
      for (const k of cands.slice(0, 3)) ul.append(el('li', {}, bdi((k.name || k.code || k.class || '') + ' ' + Math.round(100 * (k.probability || 0)) + ' %')));
      sec.append(ul);
    }
    body.append(sec);
  }
  const list = (title, items, fmt) => {
    if (!items || !items.length) return;
    const ul = el('ul');
    for (const x of items) ul.append(el('li', {}, ...fmt(x)));
    body.append(el('h3', {}, t(title)), ul);
  };
  list('decisions', c.decisions, (d) => [bdi(d.decided_at), ' ', catBadge(d.category), ' ', bdi(d.decided_by), d.reason ? ' — ' : '', d.reason ? bdi(d.reason) : '']);
  list('replies', c.replies, (p) => [bdi(p.author), ': ', t(p.plan), p.diagnosis ? ' — ' : '', p.diagnosis ? bdi(p.diagnosis) : '', p.message ? ' — ' : '', p.message ? bdi(p.message) : '']);
  list('earlier', c.earlier_cases, (e) => [bdi(e.case_id), ' ', catBadge(e.category), ' ', bdi(e.body_site), ' ', bdi(e.created_at)]);
  $('reply-status').textContent = '';
}

async function loadNodes() {
  current = null;
  const r = await api('GET', 'nodes');
  if (r.status !== 200) return;
  show('nodes');
  const tb = $('node-table').tBodies[0];
  tb.replaceChildren();
  for (const n of r.json.items) {
    tb.append(el('tr', { 'data-node': n.node },
      el('td', {}, bdi(n.node)),
      el('td', { class: n.audit_ok ? 'good' : 'bad' }, n.audit_ok ? t('verified') : t('broken') + (n.audit_error ? ' (' + n.audit_error + ')' : '')),
      el('td', {}, bdi(n.audit_entries)), el('td', {}, bdi(n.last_seq)), el('td', {}, bdi(n.last_seen)),
      el('td', { class: 'ltr' }, bdi(n.audit_head ? n.audit_head.slice(0, 16) + '…' : '—'))));
  }
}

// ---- the programme's indicators (admins, auditors): plots over time drawn here as SVG ----

function indQuery(by) {
  const q = new URLSearchParams({ by });
  const f = { clinic: 'f-clinic', sex: 'f-sex', phototype: 'f-phototype', age_band: 'f-age', from: 'f-from', to: 'f-to' };
  for (const [k, id] of Object.entries(f)) if ($(id).value) q.set(k, $(id).value);
  return q.toString();
}

function fmt(i) {
  if (i.value == null) return '—';
  return i.unit === 'proportion' ? (100 * i.value).toFixed(1) + '\u202f%' : i.value.toFixed(2);
}
function fmtCi(i) {
  if (!i.interval || i.interval.lo == null) return '—';
  const k = i.unit === 'proportion' ? 100 : 1, d = i.unit === 'proportion' ? 1 : 2;
  return '[' + (k * i.interval.lo).toFixed(d) + ', ' + (k * i.interval.hi).toFixed(d) + ']';
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

// One indicator over the periods: its value as a line, its 95% interval as bars. Time runs with
// the reading direction (right to left in Arabic).
function plot(id, groups) {
  const W = 520, H = 150, L = 44, R = 10, TOP = 10, B = 28, n = groups.length;
  const vals = groups.map((g) => g.indicators.find((x) => x.id === id));
  const prop = vals.length && vals[0].unit === 'proportion';
  let max = prop ? 1 : 0;
  for (const v of vals) if (!prop) max = Math.max(max, v.interval && v.interval.hi != null ? v.interval.hi : v.value || 0);
  if (!prop) max = max > 0 ? max * 1.1 : 1;
  const rtl = document.documentElement.dir === 'rtl';
  const x = (i) => { const f = n === 1 ? 0.5 : i / (n - 1); return rtl ? W - R - f * (W - L - R) : L + f * (W - L - R); };
  const y = (v) => TOP + (H - TOP - B) * (1 - v / max);
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'plot', 'data-id': id, role: 'img' });
  s.append(svg('line', { x1: L, x2: W - R, y1: y(0), y2: y(0), class: 'axis' }), svg('line', { x1: L, x2: W - R, y1: y(max), y2: y(max), class: 'grid' }));
  s.append(svg('text', { x: rtl ? W - 2 : 2, y: y(max) + 4, class: 'tick', 'text-anchor': rtl ? 'end' : 'start' }, prop ? '100\u202f%' : max.toPrecision(3)));
  const pts = [];
  vals.forEach((v, i) => {
    if (v.interval && v.interval.lo != null) s.append(svg('line', { x1: x(i), x2: x(i), y1: y(v.interval.lo), y2: y(v.interval.hi), class: 'ci' }));
    if (v.value != null) pts.push([x(i), y(v.value)]);
  });
  if (pts.length) s.append(svg('polyline', { points: pts.map((p) => p.join(',')).join(' '), class: 'line' }));
  vals.forEach((v, i) => { if (v.value != null) s.append(svg('circle', { cx: x(i), cy: y(v.value), r: 3, class: 'pt', 'data-key': groups[i].key }, null)); });
  groups.forEach((g, i) => { if (i === 0 || i === n - 1 || n <= 6) s.append(svg('text', { x: x(i), y: H - 8, class: 'tick', 'text-anchor': 'middle' }, g.key)); });
  if (!pts.length) s.append(svg('text', { x: W / 2, y: H / 2, class: 'tick', 'text-anchor': 'middle' }, t('no_data')));
  return s;
}

async function loadIndicators() {
  current = null;
  const r = await api('GET', 'indicators?' + indQuery($('f-by').value));
  if (r.status !== 200) return;
  show('indicators');
  const [all, ...periods] = r.json.groups;
  const tb = $('ind-table').tBodies[0];
  tb.replaceChildren();
  for (const i of all.indicators) {
    tb.append(el('tr', { 'data-id': i.id }, el('td', {}, i.name), el('td', { class: 'num' }, bdi(fmt(i))),
      el('td', { class: 'num' }, bdi(fmtCi(i))), el('td', { class: 'num' }, bdi(i.n))));
  }
  const box = $('ind-plots');
  box.replaceChildren();
  $('ind-table').dataset.cases = all.cases;
  for (const i of all.indicators) box.append(el('figure', {}, el('figcaption', {}, i.name), plot(i.id, periods)));
}

async function download(kind) {
  const r = await fetch('/api/v1/indicators.' + kind + '?' + indQuery($('f-by').value) + '&lang=' + lang,
    { headers: { 'Accept-Language': lang }, credentials: 'same-origin', cache: 'no-store' });
  if (!r.ok) return;
  const a = $('ind-download');
  a.href = URL.createObjectURL(await r.blob());
  a.download = 'basira-indicators.' + kind;
  a.click();
}

async function login(ev) {
  ev.preventDefault();
  const s = await api('POST', 'session', { username: $('user').value, password: $('pass').value });
  $('pass').value = '';
  if (s.status !== 200) {
    auth = null;
    $('login-error').textContent = s.status === 429 ? t('locked') : t('bad_login');
    return;
  }
  auth = { csrf: s.json.csrf_token, role: s.json.role };
  const w = s.json.role === 'admin' ? { status: 403 } : await api('GET', 'cases');
  const n = s.json.role === 'dermatologist' ? { status: 403 } : await api('GET', 'nodes');
  $('login-error').textContent = '';
  $('tab-worklist').hidden = w.status !== 200;
  $('tab-nodes').hidden = n.status !== 200;
  $('tab-ind').hidden = n.status !== 200; // the same roles (admins, auditors) as the nodes' list
  if (n.status === 200) {
    const sel = $('f-clinic');
    sel.replaceChildren(sel.options[0]);
    for (const x of n.json.items) sel.append(el('option', { value: x.node }, x.node));
  }
  $('logout').hidden = false;
  if (w.status === 200) loadWorklist(); else loadNodes();
}

async function sendReply(ev) {
  ev.preventDefault();
  const r = await api('POST', 'cases/' + encodeURIComponent(current.node) + '/' + current.case_id + '/reply',
    { plan: $('plan').value, diagnosis: $('diagnosis').value || undefined, message: $('message').value || undefined });
  const st = $('reply-status');
  if (r.status === 201) {
    $('diagnosis').value = '';
    $('message').value = '';
    await openCase(current.node, current.case_id);
    st.className = 'ok';
    st.textContent = t('sent');
  } else {
    st.className = 'error';
    st.textContent = t('error') + ': ' + (r.json && r.json.error ? r.json.error.message : r.status);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', login);
  $('reply-form').addEventListener('submit', sendReply);
  $('back').addEventListener('click', loadWorklist);
  $('tab-worklist').addEventListener('click', loadWorklist);
  $('tab-nodes').addEventListener('click', loadNodes);
  $('logout').addEventListener('click', async () => {
    if (auth) await api('DELETE', 'session');
    auth = null; current = null; location.reload();
  });
  $('tab-ind').addEventListener('click', loadIndicators);
  for (const f of ['f-by', 'f-clinic', 'f-sex', 'f-phototype', 'f-age', 'f-from', 'f-to']) $(f).addEventListener('change', loadIndicators);
  $('ind-csv').addEventListener('click', () => download('csv'));
  $('ind-pdf').addEventListener('click', () => download('pdf'));
  $('lang').addEventListener('change', () => { lang = $('lang').value; localStorage.setItem('basira-hub-lang', lang); applyLang(); });
  applyLang();
});
