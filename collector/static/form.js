/* The declaration form's script: what the person typed stays on this phone (localStorage),
   never on the server; the last QR is kept for the gate; communes load per province. */
(function () {
  var PERSON = "kiosk.decl.person", LAST = "kiosk.decl.last";
  var FIELDS = ["name", "dob", "id_number", "phone", "street"];
  function $(id) { return document.getElementById(id); }
  function get(k) { try { return JSON.parse(localStorage.getItem(k) || "null"); } catch (e) { return null; } }
  function put(k, v) { try { localStorage.setItem(k, JSON.stringify(v)); } catch (e) { /* private mode */ } }
  if ("serviceWorker" in navigator) { navigator.serviceWorker.register("/d/sw.js", {scope: "/d/"}).catch(function () {}); }
  if (get(LAST) && $("last-link")) { $("last-link").hidden = false; }
  var form = $("decl");
  if (form) {
    var prov = $("province"), com = $("commune");
    var loadCommunes = function (p, chosen) {
      com.length = 1;
      if (!p) { return; }
      fetch("/d/communes/" + p + ".json").then(function (r) { return r.json(); }).then(function (list) {
        com.length = 1;
        list.forEach(function (it) { var o = new Option(it[1], it[0]); o.selected = it[0] === chosen; com.add(o); });
      }).catch(function () {});
    };
    prov.addEventListener("change", function () { loadCommunes(prov.value, ""); });
    var me = get(PERSON);
    if (me && !$("errors")) {  /* after an error the page already shows what was sent */
      FIELDS.forEach(function (f) { var el = $(f); if (el && !el.value && me[f]) { el.value = me[f]; } });
      var sex = me.sex && form.querySelector('input[name=sex][value="' + me.sex + '"]');
      if (sex) { sex.checked = true; }
      if (me.province && !prov.value) { prov.value = me.province; loadCommunes(me.province, me.commune); }
      $("prefilled").hidden = false;
    }
    /* "No symptoms at all" and the symptoms exclude each other. */
    var none = form.querySelector('input[name=sym][value=none]');
    form.querySelectorAll("input[name=sym]").forEach(function (box) {
      box.addEventListener("change", function () {
        if (!box.checked) { return; }
        form.querySelectorAll("input[name=sym]").forEach(function (other) {
          if (other !== box && (box === none || other === none)) { other.checked = false; }
        });
      });
    });
    form.addEventListener("submit", function () {
      var v = {}, s = form.querySelector("input[name=sex]:checked");
      FIELDS.forEach(function (f) { v[f] = $(f).value; });
      v.sex = s ? s.value : ""; v.province = prov.value; v.commune = com.value;
      put(PERSON, v);
    });
  }
  var res = $("result");
  if (res) {
    put(LAST, {qr: $("qr").src, name: res.dataset.name, at: res.dataset.at, until: res.dataset.until,
               status: res.dataset.status});
  }
  /* The service worker answers a venue's form with this page when there is no network:
     say so, or the old QR looks like a check-in here. */
  if ($("offline-note") && location.pathname !== "/d/last") { $("offline-note").hidden = false; }
  var kept = $("kept"), last = get(LAST);
  if (kept && last) {
    $("kept-qr").src = last.qr; $("kept-name").textContent = last.name;
    $("kept-at").textContent = last.at; $("kept-until").textContent = last.until;
    kept.hidden = false; $("none-kept").hidden = true;
  }
  if ($("errors")) { $("errors").focus(); }
})();
