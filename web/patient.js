/*
 * patient.js - a patient over time: every case, two photos side by side.
 * Part of the Basira web app: shares app.js's helpers through window.Basira.
 */
'use strict';
(function (B) {
  const { API, state, $, t, api, errorText, show, banner, fmtDay, siteLabel, catName, zoom } = B;

  // ---- a patient over time: every case, photos side by side -------------------

  async function showPatient(ref) {
    show('patient');
    const ticket = (state.ticket = (state.ticket || 0) + 1);
    $('patient-ref-title').textContent = ref;
    $('patient-cases').textContent = '';
    $('compare').hidden = true;
    let p;
    try {
      p = (await api('GET', `/patients?ref=${encodeURIComponent(ref)}`)).body;
    } catch (e) {
      if (ticket === state.ticket) banner(errorText(e));
      return;
    }
    if (ticket !== state.ticket) return;
    const picked = [];
    const render = () => {
      const ul = $('patient-cases');
      ul.textContent = '';
      for (const c of p.cases || []) {
        const li = document.createElement('li');
        const a = document.createElement('a');
        a.href = `#/case/${c.id}`;
        a.textContent = `${t('case')} ${c.id} · ${fmtDay(c.created_at)} · ${c.body_site ? siteLabel(c.body_site) : t('site_unknown')} · ${catName(c.risk)}`;
        li.append(a);
        const photos = document.createElement('div');
        photos.className = 'photos';
        for (const im of c.images || []) {
          if (!im.photo_stored) continue;
          const b = document.createElement('button');
          b.type = 'button';
          b.className = 'photo-pick';
          b.setAttribute('aria-pressed', 'false');
          b.setAttribute('aria-label', t('compare_pick', { date: fmtDay(im.created_at) }));
          const img = document.createElement('img');
          img.alt = '';
          img.src = `${API}/cases/${c.id}/images/${im.id}`;
          const cap = document.createElement('span');
          cap.textContent = `${fmtDay(im.created_at)}${im.risk_index == null ? '' : ' · ' + Math.round(im.risk_index) + '/100'}`;
          b.append(img, cap);
          b.addEventListener('click', () => {
            picked.push({ src: img.src, label: cap.textContent });
            if (picked.length > 2) picked.shift();
            b.setAttribute('aria-pressed', 'true');
            if (picked.length === 2) compare(picked);
          });
          photos.append(b);
        }
        li.append(photos);
        ul.append(li);
      }
    };
    render();
    state.rerender = render;
  }

  // Two photos of the same lesion side by side: change is the strongest sign of melanoma.
  function compare(pair) {
    const box = $('compare-photos');
    box.textContent = '';
    for (const p of pair) {
      const fig = document.createElement('figure');
      const img = document.createElement('img');
      img.src = p.src;
      img.alt = p.label;
      img.addEventListener('click', () => zoom(p.src));
      const cap = document.createElement('figcaption');
      cap.textContent = p.label;
      fig.append(img, cap);
      box.append(fig);
    }
    $('compare').hidden = false;
  }

  B.screens.patient = showPatient;
})(window.Basira);
