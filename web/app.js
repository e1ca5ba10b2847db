/*
 * Basira web app: sign in, new case, photo capture with immediate quality
 * feedback, result, clinician decision, worklist, case history, user admin.
 *
 * Plain JavaScript against the clinic node's API (/api/v1, docs/openapi.json).
 * Every string shown comes from i18n/<lang>.json: t(key) for text built here,
 * data-i18n / data-i18n-attr for the HTML. Arabic switches the document to
 * dir="rtl"; the stylesheet uses logical properties so the layout mirrors.
 */
'use strict';
(function () {
  const API = '/api/v1';
  const LANGS = ['fr', 'ar', 'en'];
  const state = { lang: 'fr', cat: {}, user: null, caseId: null, file: null, localOk: false };

  const $ = (id) => document.getElementById(id);
  // Shared with the other files of the app (offline.js, accounts.js, patient.js, result.js), which
  // register their screens here; they load after this one (defer keeps the order).
  const B = (window.Basira = { screens: {} });

  // ---- translations ----------------------------------------------------

  function t(key, vars) {
    let s = state.cat[key];
    if (typeof s !== 'string') s = key; // a missing key shows itself: easy to spot, never blank
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  }

  async function loadLang(lang) {
    if (!LANGS.includes(lang)) lang = 'fr';
    const r = await fetch(`/app/i18n/${lang}.json`, { cache: 'no-cache' });
    if (!r.ok) throw new Error(`i18n ${lang}: ${r.status}`);
    state.cat = await r.json();
    state.lang = lang;
    try { localStorage.setItem('basira.lang', lang); } catch (e) { /* private mode */ }
    document.documentElement.lang = lang;
    document.documentElement.dir = lang === 'ar' ? 'rtl' : 'ltr';
    applyI18n(document);
    document.querySelectorAll('.lang').forEach((b) =>
      b.setAttribute('aria-pressed', b.dataset.lang === lang ? 'true' : 'false'));
    document.title = t('app_name');
  }

  function applyI18n(root) {
    root.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
    root.querySelectorAll('[data-i18n-attr]').forEach((el) => {
      el.dataset.i18nAttr.split(';').forEach((pair) => {
        const [attr, key] = pair.split(':');
        if (attr && key) el.setAttribute(attr.trim(), t(key.trim()));
      });
    });
    document.querySelectorAll('.site').forEach((el) => {
      el.setAttribute('aria-label', t('site_' + el.dataset.site));
    });
    // Text built from data (result, worklist...) is rebuilt in the new language.
    if (state.user) setUser(state.user);
    if (state.rerender) state.rerender();
  }

  // ---- API ---------------------------------------------------------------

  function csrf() {
    const m = document.cookie.match(/(?:^|;\s*)basira_csrf=([0-9a-f]+)/);
    return m ? m[1] : '';
  }

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  async function api(method, path, body, contentType, extra) {
    // The node answers in the language of the page (its messages, retake advice included).
    const headers = Object.assign({ 'Accept-Language': state.lang }, extra || {});
    if (method !== 'GET') headers['X-CSRF-Token'] = csrf();
    let payload;
    if (body !== undefined) {
      if (contentType) { headers['Content-Type'] = contentType; payload = body; }
      else { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
    }
    const r = await fetch(API + path, { method, headers, body: payload, credentials: 'same-origin' });
    let j = null;
    try { j = await r.json(); } catch (e) { j = null; }
    if (!r.ok) {
      const err = (j && j.error) || {};
      const e = new ApiError(r.status, err.code || 'http_' + r.status, err.message || r.statusText);
      e.body = j;
      throw e;
    }
    return { status: r.status, body: j, etag: r.headers.get('ETag') };
  }

  // A message in the user's language for an API error (the server's own text as detail).
  function errorText(e) {
    if (!(e instanceof ApiError)) return t('err_network');
    const key = 'err_' + e.code;
    const known = typeof state.cat[key] === 'string';
    return known ? t(key) : `${t('err_generic')} (${e.message})`;
  }

  function showError(el, text) { el.textContent = text; el.hidden = !text; }

  // ---- screens & routing -----------------------------------------------

  function show(name) {
    document.querySelectorAll('.screen').forEach((s) => { s.hidden = s.id !== 'screen-' + name; });
    $('main').focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }

  async function route() {
    state.rerender = null;
    const h = location.hash.replace(/^#\/?/, '');
    const [name, arg] = h.split('/');
    if (!state.user && stored('basira.signout_pending')) {
      try {
        await api('DELETE', '/session');
        store('basira.signout_pending', null);
      } catch (e) {
        if (e instanceof ApiError) store('basira.signout_pending', null);
      }
      show('login');
      return;
    }
    if (!state.user) {
      try {
        const r = await api('GET', '/session');
        setUser(r.body);
        B.queueBadge();
        B.queueFlush(); // what was captured while the node was unreachable
      } catch (e) {
        show('login');
        return;
      }
    }
    const id = parseInt(arg, 10);
    if (name === 'new') return showNew();
    if (name === 'capture' && (id > 0 || (arg === 'offline' && state.offlineCase))) return showCapture(id > 0 ? id : 'offline');
    if (name === 'queue') return showWorklist();
    if (name === 'case' && id > 0) return showCase(id);
    if (name === 'patient' && arg) return B.screens.patient(decodeURIComponent(arg));
    if (name === 'password') return B.screens.password();
    if (name === 'users' && state.user.role === 'admin') return B.screens.users();
    if (state.user.role === 'admin') return B.screens.users();
    if (state.user.role === 'data_steward') return show('export');
    return showWorklist();
  }

  function setUser(u) {
    state.user = u;
    $('nav').hidden = !u;
    $('who').hidden = !u;
    if (u) {
      $('who-name').textContent = `${u.username} (${t('role_' + u.role)})`;
      // Each role sees only the entries that lead somewhere for it.
      const admin = u.role === 'admin';
      const steward = u.role === 'data_steward'; // bulk export, and nothing clinical
      $('nav-users').hidden = !admin;
      $('nav-export').hidden = !steward;
      $('nav-worklist').hidden = admin || steward;
      $('nav-new').hidden = admin || steward || u.role === 'auditor';
      $('nav-queue').hidden = u.role !== 'dermatologist';
      if (u.idle_timeout_s > 0) state.idleMs = u.idle_timeout_s * 1000;
      idleReset();
    }
  }

  // ---- idle sign-out: an unattended screen in a shared room shows no patient for long ----

  function idleReset() {
    clearTimeout(state.idleTimer);
    if (!state.user) return;
    state.idleTimer = setTimeout(() => signOut('signed_out_idle'), state.idleMs || 15 * 60 * 1000);
  }
  ['pointerdown', 'keydown', 'touchstart', 'wheel'].forEach((ev) =>
    document.addEventListener(ev, () => { if (state.user) idleReset(); }, { passive: true }));

  async function signOut(reason) {
    clearTimeout(state.idleTimer);
    try {
      await api('DELETE', '/session');
    } catch (e) {
      // Offline: the node still holds the session; end it as soon as it answers again,
      // and never sign the next person in with it.
      if (!(e instanceof ApiError)) store('basira.signout_pending', '1');
    }
    await B.queueClear();
    setUser(null);
    clearCase();
    if (location.hash !== '#/login') {
      state.keepBanner = true; // the hash change below must not wipe the message
      location.hash = '#/login';
    }
    show('login');
    banner(reason ? t(reason) : '');
  }

  function store(k, v) {
    try { if (v === null) localStorage.removeItem(k); else localStorage.setItem(k, v); } catch (e) { /* private mode */ }
  }
  function stored(k) {
    try { return localStorage.getItem(k); } catch (e) { return null; }
  }

  // ---- sign in -----------------------------------------------------------

  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showError($('login-error'), '');
    const username = $('login-user').value.trim(), password = $('login-pass').value;
    if (!username || !password) return showError($('login-error'), t('login_missing'));
    try {
      const r = await api('POST', '/session', { username, password });
      $('login-pass').value = '';
      setUser(r.body);
      location.hash = r.body.role === 'admin' ? '#/users'
        : r.body.role === 'data_steward' ? '#/export' : '#/worklist';
      B.queueFlush();
      route();
    } catch (e) {
      showError($('login-error'), e.code === 'unauthenticated' ? t('login_failed') : errorText(e));
    }
  });

  $('sign-out').addEventListener('click', () => signOut(''));

  // ---- formatting --------------------------------------------------------

  function fmtDate(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    const loc = state.lang === 'ar' ? 'ar-MA' : state.lang === 'fr' ? 'fr-FR' : 'en-GB';
    return d.toLocaleString(loc, { dateStyle: 'medium', timeStyle: 'short' });
  }

  function fmtDay(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return iso || '—';
    const loc = state.lang === 'ar' ? 'ar-MA' : state.lang === 'fr' ? 'fr-FR' : 'en-GB';
    return d.toLocaleDateString(loc, { dateStyle: 'medium' });
  }

  function waiting(iso) {
    const min = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 60000));
    if (min < 60) return t('wait_minutes', { n: min });
    if (min < 48 * 60) return t('wait_hours', { n: Math.round(min / 60) });
    return t('wait_days', { n: Math.round(min / 1440) });
  }

  const catName = (c) => (c ? t('cat_' + c) : t('not_assessed'));
  // French puts a narrow no-break space before "%" (and ":"; see the catalogues).
  const pct = (p) => `${Math.round(p * 100)}${state.lang === 'fr' ? '\u202f' : ' '}%`;
  const triName = (v) => (v === true ? t('yes') : v === false ? t('no') : t('not_asked'));

  // ---- worklist ----------------------------------------------------------

  async function showWorklist() {
    show('worklist');
    const q = new URLSearchParams({ limit: '200' });
    if ($('wl-status').value) q.set('status', $('wl-status').value);
    if ($('wl-risk').value) q.set('risk', $('wl-risk').value);
    const ref = $('wl-ref').value.trim();
    if (ref) q.set('patient_ref', ref);
    if ($('wl-from').value) q.set('from', $('wl-from').value);
    if ($('wl-to').value) q.set('to', $('wl-to').value);
    const view = location.hash.startsWith('#/queue') ? 'review' : $('wl-view').value;
    $('wl-view').value = view;
    if (view === 'review') q.set('queue', 'review');
    if (view === 'overdue') q.set('overdue', '1');
    $('wl-title').textContent = t(view === 'review' ? 'queue_title' : 'worklist_title');
    let items = [];
    try {
      items = (await api('GET', '/cases?' + q)).body.items || [];
    } catch (e) {
      return banner(errorText(e));
    }
    const render = () => {
      const ul = $('wl-items');
      ul.textContent = '';
      for (const c of items) {
        const li = document.createElement('li');
        const a = document.createElement('a');
        a.href = `#/case/${c.id}`;
        a.className = c.risk || '';
        const thumb = document.createElement('span');
        thumb.className = 'wl-thumb';
        if (c.thumbnail) {
          const im = document.createElement('img');
          im.alt = '';
          im.loading = 'lazy';
          im.src = `${API}/cases/${c.id}/images/${c.thumbnail}`;
          thumb.append(im);
        }
        const ref = document.createElement('span');
        ref.className = 'wl-ref';
        ref.textContent = c.patient_ref;
        ref.dir = 'auto';
        const risk = document.createElement('span');
        risk.className = 'wl-risk';
        risk.textContent = catName(c.risk);
        const idx = document.createElement('span');
        idx.textContent = c.ai_risk_index == null ? '—' : `${Math.round(c.ai_risk_index)}/100`;
        const meta = document.createElement('span');
        meta.className = 'wl-meta';
        const referral = c.referral || (c.decision && c.decision.referral) || 'none';
        const parts = [t('status_' + c.status), `${t('waiting')} ${waiting(c.created_at)}`,
          t('referral_' + referral), c.body_site ? siteLabel(c.body_site) : t('site_unknown'),
          c.age == null ? t('age_unknown') : t('age_years', { n: c.age }),
          t('referred_by', { who: c.created_by })];
        if (c.follow_up) parts.push(t(c.overdue ? 'follow_up_overdue' : 'follow_up_on', { date: fmtDay(c.follow_up) }));
        meta.textContent = parts.join(' · ');
        if (c.overdue) a.classList.add('overdue');
        a.append(thumb, ref, risk, idx, meta);
        if (c.reply) {
          // A dermatologist's reply from the regional hub: the plan, flagged until the case is opened.
          const rp = document.createElement('span');
          rp.className = 'wl-reply' + (c.reply.unread ? ' unread' : '');
          rp.dataset.plan = c.reply.plan;
          rp.textContent = t('reply_from_hub', { plan: t('plan_' + c.reply.plan) });
          if (c.reply.unread) {
            const b = document.createElement('strong');
            b.className = 'wl-new';
            b.textContent = t('reply_unread');
            rp.append(' ', b);
          }
          a.append(rp);
        }
        li.append(a);
        ul.append(li);
      }
      $('wl-empty').hidden = items.length > 0;
    };
    render();
    state.rerender = render;
  }
  for (const id of ['wl-status', 'wl-risk', 'wl-view', 'wl-from', 'wl-to']) $(id).addEventListener('change', showWorklist);
  $('wl-search').addEventListener('submit', (ev) => { ev.preventDefault(); showWorklist(); });

  function banner(text) {
    $('banner').textContent = text;
    $('banner').hidden = !text;
  }

  // ---- new case ----------------------------------------------------------

  let site = null;
  function pickSite(name) {
    site = name;
    document.querySelectorAll('.site, .site-btn').forEach((el) => {
      const on = el.dataset.site === name;
      el.classList.toggle('selected', on);
      el.setAttribute('aria-pressed', on ? 'true' : 'false');
    });
    $('site-name').textContent = name ? t('site_' + name) : '—';
  }
  document.querySelectorAll('.site, .site-btn').forEach((el) => {
    el.addEventListener('click', () => pickSite(el.dataset.site));
    el.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); pickSite(el.dataset.site); }
    });
  });

  function showNew() {
    show('new');
    $('case-form').reset();
    pickSite(null);
    showError($('case-error'), '');
    state.rerender = () => pickSite(site);
  }

  function radio(name) {
    const v = document.querySelector(`input[name="${name}"]:checked`);
    return v && v.value ? v.value === 'yes' : null;
  }

  // Mirrors the node's rule (item 13): no bidirectional override, not blank or invisible only.
  function refProblem(ref) {
    if (/[\u202a-\u202e\u2066-\u2069]/.test(ref)) return 'patient_ref_bidi';
    if (!ref.replace(/[\s\u00a0\u200b-\u200f\u2060\ufeff\u00ad\u061c\u3000]/g, '')) return 'need_patient_ref';
    return null;
  }

  $('case-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = $('case-error');
    const ref = $('patient-ref').value.trim();
    const bad = refProblem(ref);
    if (bad) return showError(err, t(bad));
    if (!$('consent-care').checked) return showError(err, t('need_consent'));
    const body = {
      patient_ref: ref,
      sex: $('sex').value,
      consent: { care: true, research: $('consent-research').checked, recorded_by: state.user.username },
      history: {},
    };
    const age = parseInt($('age').value, 10);
    if (!isNaN(age)) body.age = age;
    // The site goes in the node's records as its stable code's English name.
    if (site) body.body_site = site.replace(/_/g, ' ');
    for (const q of ['changed', 'bleeding', 'rapid_growth', 'itching']) {
      const v = radio(q);
      if (v !== null) body.history[q] = v;
    }
    const dur = parseFloat($('duration').value);
    if (!isNaN(dur)) body.history.duration_months = dur;
    const key = newKey();
    try {
      const r = await api('POST', '/cases', body, undefined, { 'Idempotency-Key': key });
      location.hash = `#/capture/${r.body.id}`;
    } catch (e) {
      if (e instanceof ApiError) return showError(err, errorText(e));
      // The node is unreachable: the case waits on this device and is sent when it returns.
      state.offlineCase = { key, body };
      location.hash = '#/capture/offline';
    }
  });

  function newKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  // ---- capture & immediate quality feedback ---------------------------

  function showCapture(id) {
    state.caseId = id;
    state.file = null;
    show('capture');
    $('cap-case').textContent = id === 'offline' ? t('case_offline') : `${t('case')} ${id}`;
    $('photo-input').value = '';
    $('preview').hidden = true;
    $('quality').hidden = true;
    $('retake').hidden = true;
    $('analyse').disabled = true;
    $('analyse-status').hidden = true;
    $('cap-skip').href = `#/case/${id}`;
  }

  /*
   * A first check in the browser, before anything is sent: sharpness (variance
   * of the Laplacian of the grey image), exposure and flash glare. It answers
   * in a fraction of a second on the phone; the node's own quality gate
   * decides in the end and its guidance is shown the same way.
   */
  function localQuality(img) {
    const W = 256;
    const s = Math.min(1, W / Math.max(img.naturalWidth, img.naturalHeight));
    const w = Math.max(8, Math.round(img.naturalWidth * s)), h = Math.max(8, Math.round(img.naturalHeight * s));
    const cv = document.createElement('canvas');
    cv.width = w; cv.height = h;
    const cx = cv.getContext('2d', { willReadFrequently: true });
    cx.drawImage(img, 0, 0, w, h);
    const px = cx.getImageData(0, 0, w, h).data;
    const g = new Float32Array(w * h);
    let sum = 0, bright = 0;
    for (let i = 0; i < w * h; i++) {
      const y = 0.299 * px[4 * i] + 0.587 * px[4 * i + 1] + 0.114 * px[4 * i + 2];
      g[i] = y; sum += y;
      if (px[4 * i] > 250 && px[4 * i + 1] > 250 && px[4 * i + 2] > 250) bright++;
    }
    let n = 0, m = 0, m2 = 0;
    for (let y = 1; y < h - 1; y++) {
      for (let x = 1; x < w - 1; x++) {
        const i = y * w + x;
        const l = 4 * g[i] - g[i - 1] - g[i + 1] - g[i - w] - g[i + w];
        n++; m += l; m2 += l * l;
      }
    }
    const lapVar = n ? m2 / n - (m / n) * (m / n) : 0;
    const problems = [];
    if (Math.min(img.naturalWidth, img.naturalHeight) < 64) problems.push('q_small');
    if (lapVar < 12) problems.push('q_blurry');
    const mean = sum / (w * h);
    if (mean < 45) problems.push('q_dark');
    else if (mean > 235) problems.push('q_bright');
    if (bright / (w * h) > 0.08) problems.push('q_glare');
    return { problems, sharpness: lapVar, mean };
  }

  function showRetake(lines) {
    const ul = $('retake-list');
    ul.textContent = '';
    for (const l of lines) {
      const li = document.createElement('li');
      li.textContent = l;
      li.dir = 'auto'; // an Arabic sentence keeps its punctuation on its own side
      ul.append(li);
    }
    $('retake').hidden = lines.length === 0;
  }

  $('photo-input').addEventListener('change', () => {
    const f = $('photo-input').files[0];
    $('retake').hidden = true;
    $('analyse-status').hidden = true;
    if (!f) return;
    state.file = f;
    const url = URL.createObjectURL(f);
    const img = $('preview-img');
    const q = $('quality');
    q.hidden = false;
    q.className = 'feedback';
    q.textContent = t('checking');
    img.onload = () => {
      const r = localQuality(img);
      $('preview').hidden = false;
      q.dataset.sharpness = r.sharpness.toFixed(1);
      if (r.problems.length) {
        q.className = 'feedback bad';
        q.textContent = t('quality_bad');
        showRetake(r.problems.map((p) => t(p)));
      } else {
        q.className = 'feedback ok';
        q.textContent = t('quality_ok');
      }
      // A doubtful photo may still be sent: the node's gate has the last word.
      $('analyse').disabled = false;
    };
    img.onerror = () => {
      q.className = 'feedback bad';
      q.textContent = t('not_an_image');
      $('analyse').disabled = true;
    };
    img.src = url;
  });

  $('analyse').addEventListener('click', async () => {
    const f = state.file;
    if (!f) return;
    const st = $('analyse-status');
    st.hidden = false;
    st.textContent = t('analysing');
    $('analyse').disabled = true;
    const type = /^image\/(jpeg|png|heic|heif|webp)$/.test(f.type) ? f.type : 'image/jpeg';
    const kindEl = document.querySelector('input[name="photo-kind"]:checked');
    const kind = kindEl ? kindEl.value : '';
    // The declared kind wins over the node's detector only when the user confirms it.
    const confirmed = !!(kind && $('photo-kind-confirm') && $('photo-kind-confirm').checked);
    const key = newKey();
    if (state.caseId === 'offline') {
      await B.queueAdd({ key, caseKey: state.offlineCase.key, caseBody: state.offlineCase.body, photo: f, type, kind });
      state.offlineCase = null;
      st.textContent = t('queued_offline');
      $('analyse').disabled = false;
      return;
    }
    try {
      const q = kind ? `?modality=${kind}${confirmed ? '&modality_confirmed=true' : ''}` : '';
      const r = await api('POST', `/cases/${state.caseId}/images${q}`, f, type,
        { 'Idempotency-Key': key });
      if (r.body && r.body.status === 'ok') {
        location.hash = `#/case/${state.caseId}`;
        return;
      }
      // Rejected by the node's quality gate: its guidance, then the generic instruction.
      const lines = (r.body && r.body.guidance) || [];
      showRetake(lines.length ? lines : [t('retake_generic')]);
      st.textContent = t('quality_rejected');
    } catch (e) {
      if (!(e instanceof ApiError)) {
        await B.queueAdd({ key, caseId: state.caseId, photo: f, type, kind });
        st.textContent = t('queued_offline');
      } else if (e.status === 503) st.textContent = t('analysis_unavailable');
      else if (e.status === 422) { st.textContent = t('not_an_image'); showRetake([t('retake_generic')]); }
      else st.textContent = errorText(e);
    } finally {
      $('analyse').disabled = false;
    }
  });

  // ---- case: result, decision, history -----------------------------------

  function latestResult(c) {
    let best = null;
    for (const im of c.images || []) {
      if (im.kind === 'photo' && im.result && im.result.status === 'ok') best = im;
    }
    return best;
  }

  /*
   * Nothing of a patient stays on screen once another is asked for: the case screen
   * is emptied before the request, a failed or slow load leaves it empty, and an
   * answer that arrives after the user moved on is dropped.
   */
  function clearCase() {
    state.caseData = null;
    state.caseVersion = null;
    $('case-id').textContent = '';
    $('case-body').hidden = true;
    for (const id of ['case-summary', 'decisions', 'case-history', 'conditions', 'explain', 'warnings', 'patient-link'])
      $(id).textContent = '';
    $('result-photo').removeAttribute('src');
    $('result-photo').hidden = true;
  }

  async function showCase(id) {
    show('case');
    clearCase();
    const ticket = (state.ticket = (state.ticket || 0) + 1);
    state.caseId = id;
    $('case-loading').hidden = false;
    let r;
    try {
      r = await api('GET', `/cases/${id}`);
    } catch (e) {
      if (ticket !== state.ticket) return;
      $('case-loading').hidden = true;
      return banner(errorText(e));
    }
    if (ticket !== state.ticket || state.caseId !== id || r.body.id !== id) return;
    $('case-loading').hidden = true;
    const c = r.body;
    state.caseData = c;
    state.caseVersion = r.etag || (c.version != null ? `"${c.version}"` : null);
    const render = () => renderCase(c);
    render();
    state.rerender = render;
  }

  function dl(pairs) {
    const d = document.createElement('dl');
    for (const [k, v, auto] of pairs) {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      if (auto) dd.dir = 'auto';
      d.append(dt, dd);
    }
    return d;
  }

  function renderCase(c) {
    $('case-id').textContent = c.id;
    $('case-body').hidden = false;
    const h = c.history || {};
    const sum = $('case-summary');
    sum.textContent = '';
    sum.append(dl([
      [t('patient_ref'), c.patient_ref, true],
      [t('age'), c.age == null ? '—' : String(c.age)],
      [t('sex'), t('sex_' + (c.sex || 'unknown'))],
      [t('body_site'), c.body_site ? siteLabel(c.body_site) : '—', true],
      [t('q_changed'), triName(h.changed)],
      [t('q_bleeding'), triName(h.bleeding)],
      [t('q_rapid_growth'), triName(h.rapid_growth)],
      [t('q_itching'), triName(h.itching)],
      [t('q_duration'), h.duration_months == null ? '—' : String(h.duration_months)],
      [t('consent'), c.consent && c.consent.research ? t('consent_both') : t('consent_care_only')],
      [t('created'), fmtDate(c.created_at)],
      [t('follow_up'), c.follow_up ? t(c.overdue ? 'follow_up_overdue' : 'follow_up_on', { date: fmtDay(c.follow_up) }) : '—'],
    ]));
    const others = (c.patient && c.patient.cases) || [];
    const pl = $('patient-link');
    pl.textContent = '';
    const a = document.createElement('a');
    a.href = `#/patient/${encodeURIComponent(c.patient_ref)}`;
    a.textContent = t(others.length ? 'patient_other_cases' : 'patient_page', { n: others.length });
    pl.append(a);

    const img = latestResult(c);
    $('result').hidden = !img;
    $('no-result').hidden = !!img;
    if (img) B.renderResult(img.result);
    const ph = $('result-photo');
    if (img && img.photo_stored) {
      const src = `${API}/cases/${c.id}/images/${img.id}`;
      if (ph.getAttribute('src') !== src) ph.src = src;
      ph.hidden = false;
      ph.onclick = () => zoom(src);
    } else {
      ph.hidden = true;
    }

    const canDecide = state.user && (state.user.role === 'gp' || state.user.role === 'dermatologist');
    $('decision-form').hidden = !canDecide;
    $('decision-nurse').hidden = canDecide;
    $('decision-note').value = '';
    $('follow-up-date').value = '';
    if (c.decision) {
      // A new decision starts from the latest one; the earlier ones stay listed below.
      document.querySelector(`input[name="accept"][value="${c.decision.outcome === 'accepted' ? 'accept' : 'override'}"]`).checked = true;
      $('override-cat').value = c.decision.category || 'high';
      $('override-reason').value = c.decision.reason || '';
      $('referral').value = c.decision.referral || 'none';
    } else {
      document.querySelector('input[name="accept"][value="accept"]').checked = true;
      $('override-reason').value = '';
      $('referral').value = img && img.result.risk.category === 'high' ? 'requested' : 'none';
    }
    $('override-fields').hidden = document.querySelector('input[name="accept"]:checked').value !== 'override';
    showError($('decision-error'), '');

    for (const l of ['fr', 'ar', 'en']) {
      $('pdf-' + l).href = `${API}/cases/${c.id}/report.pdf?lang=${l}`;
      $('pdf-' + l).setAttribute('download', `basira-case-${c.id}-${l}.pdf`);
    }
    $('fhir').href = `${API}/cases/${c.id}/fhir`;
    $('fhir').setAttribute('download', `basira-case-${c.id}.fhir.json`);
    $('new-photo').href = `#/capture/${c.id}`;

    const hist = $('case-history');
    hist.textContent = '';
    const ev = [[c.created_at, t('ev_created', { who: c.created_by })]];
    for (const im of c.images || []) {
      const key = im.kind === 'photo' ? 'ev_photo' : 'ev_rejected';
      ev.push([im.created_at, t(key, { who: im.created_by })]);
    }
    const decisions = c.decisions || (c.decision ? [c.decision] : []);
    for (const d of decisions) {
      ev.push([d.decided_at, t(d.outcome === 'accepted' ? 'ev_accepted' : 'ev_overridden',
        { who: d.decided_by, cat: catName(d.category) })]);
    }
    renderDecisions(decisions);
    for (const [when, what] of ev) {
      const li = document.createElement('li');
      li.textContent = `${fmtDate(when)} — ${what}`;
      hist.append(li);
    }
  }

  // Every decision, oldest first, with who (and their role), when, the category, referral, reason, note.
  function renderDecisions(list) {
    const ol = $('decisions');
    ol.textContent = '';
    $('decisions-card').hidden = list.length === 0;
    list.forEach((d, i) => {
      const li = document.createElement('li');
      li.className = 'decision' + (i === list.length - 1 ? ' latest' : ' earlier');
      const head = document.createElement('p');
      const who = document.createElement('bdi');
      who.textContent = d.decided_by;
      head.append(`${t('decision_version', { n: d.version || i + 1 })} · ${fmtDate(d.decided_at)} · `, who,
        ` (${d.role && d.role !== 'unknown' ? t('role_' + d.role) : '?'})`);
      const what = document.createElement('p');
      what.className = 'category ' + (d.category || '');
      what.textContent = `${catName(d.category)} · ${t('referral_' + (d.referral || 'none'))}` +
        (d.outcome === 'accepted' ? ` · ${t('accepted_ai')}` : '');
      li.append(head, what);
      for (const [k, v] of [['decision_reason', d.reason], ['decision_note', d.note]]) {
        if (!v) continue;
        const p = document.createElement('p');
        const b = document.createElement('bdi');
        b.textContent = v;
        p.append(`${t(k)}${colon()}`, b);
        li.append(p);
      }
      ol.append(li);
    });
  }
  const colon = () => (state.lang === 'fr' ? '\u202f: ' : state.lang === 'ar' ? ': ' : ': ');

  function zoom(src) {
    const dlg = $('zoom');
    const im = $('zoom-img');
    im.src = src;
    state.zoom = 1;
    im.style.width = '';
    dlg.hidden = false;
    $('zoom-close').focus();
  }
  $('zoom-close').addEventListener('click', () => { $('zoom').hidden = true; $('zoom-img').removeAttribute('src'); });
  for (const [id, f] of [['zoom-in', 1.5], ['zoom-out', 1 / 1.5]]) {
    $(id).addEventListener('click', () => {
      const im = $('zoom-img');
      state.zoom = Math.max(0.25, Math.min(8, (state.zoom || 1) * f));
      im.style.width = `${Math.round(im.naturalWidth * state.zoom)}px`;
      im.style.maxWidth = 'none';
    });
  }

  function siteLabel(s) {
    const key = 'site_' + s.replace(/ /g, '_');
    return typeof state.cat[key] === 'string' ? t(key) : s;
  }

  document.querySelectorAll('input[name="accept"]').forEach((el) => el.addEventListener('change', () => {
    $('override-fields').hidden = document.querySelector('input[name="accept"]:checked').value !== 'override';
  }));

  $('decision-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const accept = document.querySelector('input[name="accept"]:checked').value === 'accept';
    const body = { accept_ai: accept, referral: $('referral').value };
    const reason = $('override-reason').value.trim();
    if (!accept) {
      body.category = $('override-cat').value;
      body.reason = reason;
      if (!body.reason) return showError($('decision-error'), t('need_reason'));
    }
    const c = state.caseData;
    const img = c && latestResult(c);
    const finalCat = accept ? img && img.result.risk.category : body.category;
    if (finalCat === 'high' && body.referral === 'none') {
      // A high category without a referral must say why (the letter states it).
      if (!reason) {
        document.querySelector('input[name="accept"][value="override"]').checked = true;
        $('override-fields').hidden = false;
        $('override-cat').value = 'high';
        return showError($('decision-error'), t('need_reason_high'));
      }
      body.reason = reason;
    }
    const note = $('decision-note').value.trim();
    if (note) body.note = note;
    if ($('follow-up-date').value) body.follow_up = $('follow-up-date').value;
    const headers = state.caseVersion ? { 'If-Match': state.caseVersion } : {};
    try {
      await api('POST', `/cases/${state.caseId}/decision`, body, undefined, headers);
      banner(t('decision_saved'));
      showCase(state.caseId);
    } catch (e) {
      if (e.status === 412) {
        // Someone decided meanwhile: show what changed, keep what was typed.
        const ids = ['override-cat', 'override-reason', 'referral', 'decision-note', 'follow-up-date'];
        const typed = ids.map((id) => $(id).value);
        const choice = document.querySelector('input[name="accept"]:checked').value;
        await showCase(state.caseId);
        ids.forEach((id, i) => { $(id).value = typed[i]; });
        document.querySelector(`input[name="accept"][value="${choice}"]`).checked = true;
        $('override-fields').hidden = choice !== 'override';
        const d = state.caseData && state.caseData.decision;
        banner(d ? t('decision_stale', { who: d.decided_by, cat: catName(d.category) }) : t('err_precondition_failed'));
        return;
      }
      showError($('decision-error'), errorText(e));
    }
  });

  // ---- start ----------------------------------------------------------------

  document.querySelectorAll('.lang').forEach((b) => b.addEventListener('click', async () => {
    await loadLang(b.dataset.lang);
    // The account remembers it: the node answers in it on every device (else Accept-Language).
    if (state.user) api('PATCH', '/session', { lang: state.lang }).catch(() => { /* offline */ });
  }));
  // Installable and usable without the node: the service worker keeps the app's files.
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('/sw.js').catch(() => { /* not served */ });
  window.addEventListener('hashchange', () => {
    if (state.keepBanner) state.keepBanner = false;
    else banner('');
    route();
  });

  Object.assign(B, { API, state, $, t, api, ApiError, errorText, showError, show, banner, signOut,
    fmtDay, siteLabel, catName, pct, zoom });

  let start = 'fr';
  try { start = localStorage.getItem('basira.lang') || start; } catch (e) { /* private mode */ }
  const asked = new URLSearchParams(location.search).get('lang');
  if (LANGS.includes(asked)) start = asked;
  // After every file of the app has run (deferred scripts come before DOMContentLoaded).
  document.addEventListener('DOMContentLoaded', () => {
    loadLang(start).then(route, () => { banner('i18n'); route(); });
  });
})();
