/* Keeps the page that shows the phone's last declaration, so it opens at the gate offline. */
var CACHE = "decl-v1", KEPT = ["/d/last", "/d/last?lang=en", "/d/app.js"];
self.addEventListener("install", function (e) {
  e.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(KEPT); }).then(function () { return self.skipWaiting(); }));
});
self.addEventListener("activate", function (e) { e.waitUntil(self.clients.claim()); });
self.addEventListener("fetch", function (e) {
  if (e.request.method !== "GET") { return; }
  var url = new URL(e.request.url);
  if (url.pathname === "/d/last" || url.pathname === "/d/app.js") {
    e.respondWith(fetch(e.request).then(function (r) {
      var copy = r.clone();
      caches.open(CACHE).then(function (c) { c.put(e.request, copy); });
      return r;
    }).catch(function () { return caches.match(e.request); }));
  } else if (url.pathname.indexOf("/d") === 0 && e.request.mode === "navigate") {
    e.respondWith(fetch(e.request).catch(function () { return caches.match("/d/last"); }));
  }
});
