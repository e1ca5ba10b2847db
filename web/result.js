/*
 * result.js - one triage result on the case screen: the risk gauge coloured by the
 * thresholds in force, what raised the category, the uncertainty range, what the
 * model was validated on, the photo kind, warnings, the primary-care advice and the
 * likely conditions. Part of the Basira web app: shares app.js's helpers through
 * window.Basira.
 */
'use strict';
(function (B) {
  const { state, $, t, catName, pct } = B;

  function renderResult(r) {
    const risk = r.risk || {};
    const idx = Math.max(0, Math.min(100, Math.round(risk.index || 0)));
    $('risk-index').textContent = String(idx);
    $('gauge').setAttribute('aria-valuenow', String(idx));
    $('gauge').setAttribute('aria-valuetext', `${idx} / 100, ${catName(risk.category)}`);
    // Position by the logical start: mirrors itself in Arabic.
    $('gauge-mark').style.insetInlineStart = `calc(${idx}% - 3px)`;
    // Colours follow the thresholds in force: green below medium, yellow to high, red above.
    const th = risk.thresholds || {};
    const med = Math.round(100 * (th.medium == null ? 0.08 : th.medium));
    const high = Math.round(100 * (th.high == null ? 0.4 : th.high));
    const dir = state.lang === 'ar' ? 'to left' : 'to right';
    const track = $('gauge-track');
    track.style.background = `linear-gradient(${dir}, #2e8b57 0 ${med}%, #f0b429 ${med}% ${high}%, #c0392b ${high}% 100%)`;
    track.dataset.medium = String(med);
    track.dataset.high = String(high);
    const ex = $('explain');
    ex.textContent = '';
    const line = (text, cls) => {
      const li = document.createElement('li');
      li.textContent = text;
      if (cls) li.className = cls;
      ex.append(li);
    };
    line(t('explain_thresholds', { medium: med, high }));
    const base = idx >= high ? 'high' : idx >= med ? 'medium' : 'low';
    line(t('explain_model', { cat: catName(base) }));
    for (const why of risk.raised_by || []) line(t('raised_' + why, { cat: catName(risk.category) }), 'raised');
    const u = risk.uncertainty;
    if (u && u.low != null) line(t(u.method === 'ensemble' ? 'explain_uncertainty_ensemble' : 'explain_uncertainty', { low: u.low, high: u.high, n: u.views }), 'uncertainty');
    const v = r.validation || {};
    if (v.data_set) line(t('explain_validated', { data: v.data_set,
      kinds: (v.photo_kinds || []).map((k) => t('kind_' + k)).join(', '),
      tones: (v.skin_tones || []).map((k) => t('tone_' + k)).join(', ') }));
    // Which kind of photo it was treated as, and what the detector said (issue 11).
    const mo = r.modality || {};
    if (mo.kind) line(t('explain_modality', { kind: t('kind_' + mo.kind),
      detected: mo.detected ? t('kind_' + mo.detected) : '?',
      p: mo.detected && mo.probability != null
        ? Math.round(100 * (mo.detected === mo.kind ? mo.probability : 1 - mo.probability)) : '?' }),
    mo.disagreement ? 'raised' : '');
    const wl = $('warnings');
    wl.textContent = '';
    for (const w of v.warnings || []) {
      const li = document.createElement('li');
      li.textContent = typeof state.cat['warn_' + w.code] === 'string' ? t('warn_' + w.code) : w.message;
      li.dataset.code = w.code;
      wl.append(li);
    }
    wl.hidden = wl.children.length === 0;
    const cat = $('category');
    cat.className = 'category ' + (risk.category || '');
    cat.textContent = catName(risk.category);
    $('action').textContent = t('action_' + (risk.category || 'high'));
    // Non-neoplastic and low: primary care, refer if not better (issue 11).
    const pc = r.primary_care || {};
    $('primary-care').hidden = pc.applies !== true;
    $('primary-care').textContent = pc.applies === true ? t('primary_care_advice') : '';
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

  B.renderResult = renderResult;
})(window.Basira);
