// ops serve: row links, tree selection, compare picks, live updates. No dependencies.
"use strict";
(function () {
  // Trace list: a click anywhere on a row opens the trace.
  document.querySelectorAll("tr.trace-row").forEach(bindRow);
  function bindRow(tr) {
    tr.addEventListener("click", function (e) {
      if (e.target.closest("a, input")) return;
      window.location.href = tr.dataset.href;
    });
  }

  // Compare: two picked rows.
  var compare = document.getElementById("compare-selected");
  function picked() {
    return Array.prototype.slice.call(document.querySelectorAll("input.pick:checked")).map(function (i) { return i.value; });
  }
  document.addEventListener("change", function (e) {
    if (compare && e.target.classList && e.target.classList.contains("pick")) {
      compare.disabled = picked().length !== 2;
    }
  });
  if (compare) {
    compare.addEventListener("click", function () {
      var p = picked();
      if (p.length === 2) {
        window.location.href = "/compare?a=" + encodeURIComponent(p[0]) + "&b=" + encodeURIComponent(p[1]);
      }
    });
  }

  // Trace detail: selecting a tree row shows that observation's panel.
  function select(row) {
    document.querySelectorAll("tr.obs-row.selected").forEach(function (r) { r.classList.remove("selected"); });
    row.classList.add("selected");
    document.querySelectorAll("section.obs-detail").forEach(function (s) { s.hidden = true; });
    var panel = document.getElementById("obs-" + row.dataset.obs);
    if (panel) panel.hidden = false;
  }
  var rows = document.querySelectorAll("tr.obs-row");
  rows.forEach(function (row) {
    row.addEventListener("click", function () { select(row); });
    row.addEventListener("keydown", function (e) { if (e.key === "Enter") select(row); });
  });
  if (rows.length) rows[0].classList.add("selected");

  // Live: new traces are added to the top of an unfiltered first page.
  var table = document.getElementById("traces");
  if (table && table.dataset.live === "1" && window.EventSource) {
    var source = new EventSource("/api/events?after=" + encodeURIComponent(table.dataset.after));
    source.addEventListener("trace", function (e) {
      var t = JSON.parse(e.data);
      var body = table.tBodies[0];
      var existing = body.querySelector('tr[data-id="' + CSS.escape(t.id) + '"]');
      var row = buildRow(t);
      if (existing) existing.replaceWith(row); else body.insertBefore(row, body.firstChild);
      var total = document.getElementById("total");
      if (total && !existing) total.textContent = String(Number(total.textContent) + 1);
    });
  }
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function link(href, text) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }
  function pad(n, w) { return String(n).padStart(w || 2, "0"); }
  function time(iso) {
    var d = new Date(iso);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + "." + pad(d.getUTCMilliseconds(), 3);
  }
  function duration(ms) {
    if (ms === null || ms === undefined) return "running";
    return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(2) + " s";
  }
  function buildRow(t) {
    var tr = document.createElement("tr");
    tr.className = "trace-row live-new";
    tr.dataset.href = "/traces/" + encodeURIComponent(t.id);
    tr.dataset.id = t.id;
    var pick = document.createElement("input");
    pick.type = "checkbox";
    pick.className = "pick";
    pick.value = t.id;
    cell(tr, pick);
    cell(tr, link(tr.dataset.href, t.name));
    cell(tr, t.kind);
    cell(tr, t.user_id ? link("/?user=" + encodeURIComponent(t.user_id), t.user_id) : "");
    cell(tr, t.session_id ? link("/sessions/" + encodeURIComponent(t.session_id), t.session_id) : "");
    cell(tr, time(t.start_time));
    cell(tr, duration(t.duration_ms));
    cell(tr, String(t.tokens), "num");
    cell(tr, t.cost === null || t.cost === undefined ? "\u2013" : "$" + t.cost.toFixed(6), "num");
    var status = document.createElement("span");
    status.className = "status status-" + t.status;
    status.textContent = t.status;
    cell(tr, status);
    bindRow(tr);
    return tr;
  }
})();
