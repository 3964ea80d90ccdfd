/*
 * gogo dashboard: the learning panel. Accuracy and alerts are rendered with the page
 * (templates/dashboard/_learning.html); training progress arrives live as "training" updates on the
 * dashboard websocket (apps.predictions.learning.ProgressReporter), which dashboard.js re-dispatches
 * as "gogo:update" DOM events; when a run ends the checkpoint ranking follows as "checkpoints".
 */
(function () {
  "use strict";

  var card = document.getElementById("learning-card");
  if (!card) return;

  function fmt(value, digits) {
    return value === null || value === undefined || isNaN(value) ? "" : Number(value).toFixed(digits);
  }

  function render(t) {
    var row = card.querySelector('#learning-training tr[data-model="' + t.model + '"]');
    if (!row) return;
    var state = row.querySelector('[data-field="state"]');
    state.textContent = "";
    var badge = document.createElement("span");
    badge.className = "badge" + (t.state === "failed" ? " badge--bad" : t.state === "running" ? " badge--warn" : "");
    badge.textContent = t.state;
    badge.title = t.message || "";
    var kind = document.createElement("span");
    kind.className = "muted";
    kind.textContent = " " + (t.kind || "");
    state.appendChild(badge);
    state.appendChild(kind);
    row.querySelector('[data-field="epoch"]').textContent = t.total ? t.epoch + "/" + t.total : "";
    row.querySelector('[data-field="metric"]').textContent = fmt(t.metric, 4);
    row.querySelector('[data-field="fraction"]').value = Math.round(100 * (t.fraction || 0));
  }

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function badge(text, kind) {
    var b = document.createElement("span");
    b.className = "badge badge--" + kind;
    b.textContent = text;
    return b;
  }

  // The checkpoint ranking (templates/dashboard/_checkpoints.html), re-sent by the server when a
  // training run ends: [{model, rows: [{rank, version, metric, active, pinned, created_at, load_error}]}].
  function renderCheckpoints(models) {
    var body = document.querySelector("#checkpoints tbody");
    if (!body) return;
    body.textContent = "";
    models.forEach(function (m) {
      m.rows.forEach(function (c, i) {
        var tr = document.createElement("tr");
        tr.dataset.model = m.model;
        tr.dataset.rank = c.rank;
        tr.appendChild(cell(i === 0 ? m.model : ""));
        tr.appendChild(cell(String(c.rank), "num"));
        var version = cell(c.version.length > 22 ? c.version.slice(0, 21) + "…" : c.version);
        version.title = "trained " + (c.created_at || "").slice(0, 16).replace("T", " ") + " UTC";
        tr.appendChild(version);
        tr.appendChild(cell(c.metric === null || c.metric === undefined ? "—" : Number(c.metric).toFixed(4), "num"));
        var state = cell("");
        if (c.active) state.appendChild(badge("live", "ok"));
        if (c.pinned) state.appendChild(badge("pinned", "info"));
        if (c.load_error) state.appendChild(badge("unloadable", "bad"));
        tr.appendChild(state);
        body.appendChild(tr);
      });
    });
    if (!body.children.length) {
      var empty = cell("No checkpoint yet.", "muted small");
      empty.colSpan = 5;
      var tr = document.createElement("tr");
      tr.appendChild(empty);
      body.appendChild(tr);
    }
  }

  document.addEventListener("gogo:update", function (event) {
    if (!event.detail) return;
    if (event.detail.type === "training") render(event.detail);
    if (event.detail.type === "checkpoints") renderCheckpoints(event.detail.checkpoints || []);
  });
})();
