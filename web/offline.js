/*
 * offline.js - offline capture: the queue on the device and its sending.
 * Part of the Basira web app: shares app.js's helpers through window.Basira.
 */
'use strict';
(function (B) {
  const { API, state, $, t, api, banner } = B;

  // ---- offline capture: a queue on the device (IndexedDB) -----------------------
  /*
   * A case and photo taken while the node is unreachable wait here and are sent
   * when it answers again. Each carries an Idempotency-Key made when it was
   * captured, so a retry after a lost answer never makes a second case or photo.
   * Signing out empties the queue: nothing of a patient stays on the phone.
   */
  function queueDb() {
    return new Promise((res, rej) => {
      const rq = indexedDB.open('basira-queue', 1);
      rq.onupgradeneeded = () => rq.result.createObjectStore('q', { keyPath: 'key' });
      rq.onsuccess = () => res(rq.result);
      rq.onerror = () => rej(rq.error);
    });
  }
  async function queueOp(mode, fn) {
    const db = await queueDb();
    return new Promise((res, rej) => {
      const tx = db.transaction('q', mode);
      const out = fn(tx.objectStore('q'));
      tx.oncomplete = () => { db.close(); res(out && out.result); };
      tx.onerror = () => { db.close(); rej(tx.error); };
    });
  }
  const queueAdd = (item) => queueOp('readwrite', (q) => q.put(Object.assign({ at: Date.now() }, item))).then(queueBadge);
  const queueAll = () => queueOp('readonly', (q) => q.getAll()).catch(() => []);
  const queueDel = (key) => queueOp('readwrite', (q) => q.delete(key));
  async function queueClear() {
    try { await queueOp('readwrite', (q) => q.clear()); } catch (e) { /* no IndexedDB */ }
    queueBadge();
  }
  async function queueBadge() {
    const n = (await queueAll()).length;
    $('queue-badge').hidden = n === 0;
    $('queue-badge').textContent = t('queue_waiting', { n });
  }
  async function queueFlush() {
    if (state.flushing || !state.user) return;
    state.flushing = true;
    try {
      for (const it of await queueAll()) {
        let caseId = it.caseId;
        if (!caseId) {
          caseId = (await api('POST', '/cases', it.caseBody, undefined, { 'Idempotency-Key': it.caseKey })).body.id;
          it.caseId = caseId;
          await queueOp('readwrite', (q) => q.put(it));
        }
        await api('POST', `/cases/${caseId}/images${it.kind ? '?photo_kind=' + it.kind : ''}`, it.photo, it.type,
          { 'Idempotency-Key': it.key });
        await queueDel(it.key);
        banner(t('queue_sent', { id: caseId }));
      }
    } catch (e) {
      /* still unreachable, or refused: kept for the next try */
    } finally {
      state.flushing = false;
      queueBadge();
    }
  }
  window.addEventListener('online', queueFlush);

  Object.assign(B, { queueAdd, queueAll, queueClear, queueBadge, queueFlush });
})(window.Basira);
