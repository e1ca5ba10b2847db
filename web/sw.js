/*
 * Basira service worker: the app's own files are kept on the device so that the
 * web app opens without the clinic node (offline capture, see app.js's queue).
 * Only the app shell is cached; API answers (patient data) never are.
 */
'use strict';
const CACHE = 'basira-app-v2';
const SHELL = ['/', '/app/app.js', '/app/offline.js', '/app/accounts.js', '/app/patient.js', '/app/result.js', '/app/app.css', '/app/manifest.webmanifest', '/app/icon.svg',
  '/app/i18n/fr.json', '/app/i18n/ar.json', '/app/i18n/en.json'];

self.addEventListener('install', (ev) => {
  ev.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (ev) => {
  ev.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// The network first (always the newest app); the cached copy when the node is unreachable.
self.addEventListener('fetch', (ev) => {
  const url = new URL(ev.request.url);
  if (ev.request.method !== 'GET' || url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
  const key = url.pathname === '/' || url.pathname === '/index.html' ? '/' : url.pathname;
  if (!SHELL.includes(key)) return;
  ev.respondWith(fetch(ev.request).then((r) => {
    if (r.ok) { const copy = r.clone(); caches.open(CACHE).then((c) => c.put(key, copy)); }
    return r;
  }).catch(() => caches.match(key)));
});
