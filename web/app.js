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

  async function api(method, path, body, contentType) {
    const headers = {};
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
      throw new ApiError(r.status, err.code || 'http_' + r.status, err.message || r.statusText);
    }
    return { status: r.status, body: j };
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
    if (!state.user) {
      try {
        const r = await api('GET', '/session');
        setUser(r.body);
      } catch (e) {
        show('login');
        return;
      }
    }
    const id = parseInt(arg, 10);
    if (name === 'new') return showNew();
    if (name === 'capture' && id > 0) return showCapture(id);
    if (name === 'case' && id > 0) return showCase(id);
    if (name === 'users' && state.user.role === 'admin') return showUsers();
    if (state.user.role === 'admin') return showUsers();
    return showWorklist();
  }

  function setUser(u) {
    state.user = u;
    $('nav').hidden = !u;
    $('who').hidden = !u;
    if (u) {
      $('who-name').textContent = `${u.username} (${t('role_' + u.role)})`;
      $('nav-users').hidden = u.role !== 'admin';
    }
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
      setUser({ username: r.body.username, role: r.body.role });
      location.hash = r.body.role === 'admin' ? '#/users' : '#/worklist';
      route();
    } catch (e) {
      showError($('login-error'), e.code === 'unauthenticated' ? t('login_failed') : errorText(e));
    }
  });

  $('sign-out').addEventListener('click', async () => {
    try { await api('DELETE', '/session'); } catch (e) { /* already signed out */ }
    setUser(null);
    location.hash = '#/login';
    show('login');
  });

  // ---- formatting --------------------------------------------------------

  function fmtDate(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    const loc = state.lang === 'ar' ? 'ar-MA' : state.lang === 'fr' ? 'fr-FR' : 'en-GB';
    return d.toLocaleString(loc, { dateStyle: 'medium', timeStyle: 'short' });
  }

  function waiting(iso) {
    const min = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 60000));
    if (min < 60) return t('wait_minutes', { n: min });
    if (min < 48 * 60) return t('wait_hours', { n: Math.round(min / 60) });
    return t('wait_days', { n: Math.round(min / 1440) });
  }

  const catName = (c) => (c ? t('cat_' + c) : t('not_assessed'));
  const pct = (p) => `${Math.round(p * 100)} %`;
  const triName = (v) => (v === true ? t('yes') : v === false ? t('no') : t('not_asked'));

  // ---- worklist ----------------------------------------------------------

  async function showWorklist() {
    show('worklist');
    const q = new URLSearchParams({ limit: '200' });
    if ($('wl-status').value) q.set('status', $('wl-status').value);
    if ($('wl-risk').value) q.set('risk', $('wl-risk').value);
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
        const referral = (c.decision && c.decision.referral) || 'none';
        meta.textContent = [t('status_' + c.status), `${t('waiting')} ${waiting(c.created_at)}`,
          t('referral_' + referral)].join(' · ');
        a.append(ref, risk, idx, meta);
        li.append(a);
        ul.append(li);
      }
      $('wl-empty').hidden = items.length > 0;
    };
    render();
    state.rerender = render;
  }
  $('wl-status').addEventListener('change', showWorklist);
  $('wl-risk').addEventListener('change', showWorklist);

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

  $('case-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = $('case-error');
    const ref = $('patient-ref').value.trim();
    if (!ref) return showError(err, t('need_patient_ref'));
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
    for (const q of ['changed', 'bleeding', 'itching']) {
      const v = radio(q);
      if (v !== null) body.history[q] = v;
    }
    const dur = parseFloat($('duration').value);
    if (!isNaN(dur)) body.history.duration_months = dur;
    try {
      const r = await api('POST', '/cases', body);
      location.hash = `#/capture/${r.body.id}`;
    } catch (e) {
      showError(err, errorText(e));
    }
  });

  // ---- capture & immediate quality feedback ---------------------------

  function showCapture(id) {
    state.caseId = id;
    state.file = null;
    show('capture');
    $('cap-case').textContent = `${t('case')} ${id}`;
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
    try {
      const r = await api('POST', `/cases/${state.caseId}/images`, f, type);
      if (r.body && r.body.status === 'ok') {
        location.hash = `#/case/${state.caseId}`;
        return;
      }
      // Rejected by the node's quality gate: its guidance, then the generic instruction.
      const lines = (r.body && r.body.guidance) || [];
      showRetake(lines.length ? lines : [t('retake_generic')]);
      st.textContent = t('quality_rejected');
    } catch (e) {
      if (e.status === 503) st.textContent = t('analysis_unavailable');
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

  async function showCase(id) {
    show('case');
    state.caseId = id;
    let c;
    try {
      c = (await api('GET', `/cases/${id}`)).body;
    } catch (e) {
      return banner(errorText(e));
    }
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
      [t('q_itching'), triName(h.itching)],
      [t('q_duration'), h.duration_months == null ? '—' : String(h.duration_months)],
      [t('consent'), c.consent && c.consent.research ? t('consent_both') : t('consent_care_only')],
      [t('created'), fmtDate(c.created_at)],
    ]));

    const img = latestResult(c);
    $('result').hidden = !img;
    $('no-result').hidden = !!img;
    if (img) renderResult(img.result);
    const ph = $('result-photo');
    if (img && img.photo_stored) {
      const src = `${API}/cases/${c.id}/images/${img.id}`;
      if (ph.getAttribute('src') !== src) ph.src = src;
      ph.hidden = false;
    } else {
      ph.hidden = true;
    }

    const canDecide = state.user && (state.user.role === 'gp' || state.user.role === 'dermatologist');
    $('decision-form').hidden = !canDecide;
    $('decision-nurse').hidden = canDecide;
    if (c.decision) {
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
    if (c.decision) {
      ev.push([c.decision.decided_at, t(c.decision.outcome === 'accepted' ? 'ev_accepted' : 'ev_overridden',
        { who: c.decision.decided_by, cat: catName(c.decision.category) })]);
    }
    for (const [when, what] of ev) {
      const li = document.createElement('li');
      li.textContent = `${fmtDate(when)} — ${what}`;
      hist.append(li);
    }
  }

  function siteLabel(s) {
    const key = 'site_' + s.replace(/ /g, '_');
    return typeof state.cat[key] === 'string' ? t(key) : s;
  }

  function renderResult(r) {
    const risk = r.risk || {};
    const idx = Math.max(0, Math.min(100, Math.round(risk.index || 0)));
    $('risk-index').textContent = String(idx);
    $('gauge').setAttribute('aria-valuenow', String(idx));
    $('gauge').setAttribute('aria-valuetext', `${idx} / 100, ${catName(risk.category)}`);
    // Position by the logical start: mirrors itself in Arabic.
    $('gauge-mark').style.insetInlineStart = `calc(${idx}% - 3px)`;
    const cat = $('category');
    cat.className = 'category ' + (risk.category || '');
    cat.textContent = catName(risk.category);
    $('action').textContent = t('action_' + (risk.category || 'high'));
    const ol = $('conditions');
    ol.textContent = '';
    for (const cand of (r.candidates || []).slice(0, 3)) {
      const li = document.createElement('li');
      const key = 'class_' + cand.code;
      const name = typeof state.cat[key] === 'string' ? t(key) : cand.name || cand.code;
      li.textContent = `${name} — ${pct(cand.probability || 0)}`;
      ol.append(li);
    }
    const tone = r.skin_tone && r.skin_tone.category;
    $('skin-tone').textContent = tone ? t('tone_' + tone) : t('tone_unknown');
    const m = r.model || {};
    $('model').textContent = `${m.name || '?'} ${m.version || ''}`.trim();
  }

  document.querySelectorAll('input[name="accept"]').forEach((el) => el.addEventListener('change', () => {
    $('override-fields').hidden = document.querySelector('input[name="accept"]:checked').value !== 'override';
  }));

  $('decision-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const accept = document.querySelector('input[name="accept"]:checked').value === 'accept';
    const body = { accept_ai: accept, referral: $('referral').value };
    if (!accept) {
      body.category = $('override-cat').value;
      body.reason = $('override-reason').value.trim();
      if (!body.reason) return showError($('decision-error'), t('need_reason'));
    }
    try {
      await api('POST', `/cases/${state.caseId}/decision`, body);
      banner(t('decision_saved'));
      showCase(state.caseId);
    } catch (e) {
      showError($('decision-error'), errorText(e));
    }
  });

  // ---- users (admin) ------------------------------------------------------

  async function showUsers() {
    show('users');
    let users = [];
    try {
      users = (await api('GET', '/users')).body.items || [];
    } catch (e) {
      return banner(errorText(e));
    }
    const render = () => {
      const tb = $('users-body');
      tb.textContent = '';
      for (const u of users) {
        const tr = document.createElement('tr');
        const name = document.createElement('td');
        name.textContent = u.username;
        const role = document.createElement('td');
        role.textContent = t('role_' + u.role);
        const st = document.createElement('td');
        st.textContent = u.disabled ? t('user_disabled') : t('user_active');
        const act = document.createElement('td');
        if (u.username !== state.user.username) {
          const b = document.createElement('button');
          b.type = 'button';
          b.className = 'secondary';
          b.textContent = u.disabled ? t('enable') : t('disable');
          b.setAttribute('aria-label', `${b.textContent} ${u.username}`);
          b.addEventListener('click', async () => {
            try {
              await api('PATCH', `/users/${encodeURIComponent(u.username)}`, { disabled: !u.disabled });
              showUsers();
            } catch (e) { banner(errorText(e)); }
          });
          act.append(b);
        }
        tr.append(name, role, st, act);
        tb.append(tr);
      }
    };
    render();
    state.rerender = render;
  }

  $('user-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { username: $('nu-name').value.trim(), role: $('nu-role').value, password: $('nu-pass').value };
    if (!body.username) return showError($('user-error'), t('need_username'));
    if (body.password.length < 8) return showError($('user-error'), t('need_password'));
    try {
      await api('POST', '/users', body);
      $('user-form').reset();
      showError($('user-error'), '');
      showUsers();
    } catch (e) {
      showError($('user-error'), errorText(e));
    }
  });

  // ---- start ----------------------------------------------------------------

  document.querySelectorAll('.lang').forEach((b) => b.addEventListener('click', () => loadLang(b.dataset.lang)));
  window.addEventListener('hashchange', () => { banner(''); route(); });

  let start = 'fr';
  try { start = localStorage.getItem('basira.lang') || start; } catch (e) { /* private mode */ }
  const asked = new URLSearchParams(location.search).get('lang');
  if (LANGS.includes(asked)) start = asked;
  loadLang(start).then(route, () => { banner('i18n'); route(); });
})();
