/*
 * gogo dashboard: the learning panel. Accuracy and alerts are rendered with the page
 * (templates/dashboard/_learning.html); training progress arrives live as "training" updates on the
 * dashboard websocket (apps.predictions.learning.ProgressReporter), which dashboard.js re-dispatches
 * as "gogo:update" DOM events; when a run ends the checkpoint ranking follows as "checkpoints".
 * "Train now" posts to /api/v1/training-runs/; "Promote" / "Roll back" on the checkpoints panel
 * post to /api/v1/checkpoints/<id>/promote|rollback/ (session auth with the CSRF token).
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
    var message = row.querySelector('[data-field="message"]');
    if (message) message.textContent = t.message || "";
  }

  function csrfToken() {
    var input = card.querySelector("input[name=csrfmiddlewaretoken]");
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return input ? input.value : match ? decodeURIComponent(match[1]) : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var detail = data.detail || Object.keys(data).map(function (k) { return k + ": " + data[k]; }).join("; ");
          throw new Error(detail || "HTTP " + response.status);
        }
        return data;
      });
    });
  }

  function say(id, text) {
    var el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  card.addEventListener("click", function (event) {
    var button = event.target.closest("[data-train-now]");
    if (!button) return;
    var model = button.getAttribute("data-train-now");
    button.disabled = true;
    post("/api/v1/training-runs/", { model_name: model, kind: "fine_tune" }).then(function (run) {
      say("learning-message", model + ": training run " + run.id + " queued");
      // the run may already be over (tasks run in the server process when there is no broker)
      render({ model: model, kind: run.kind, state: run.state, fraction: run.finished_at ? 1 : 0,
        message: run.reason || (run.progress && run.progress.message) || run.state });
    }).catch(function (err) {
      say("learning-message", model + ": " + err.message);
    }).then(function () { button.disabled = false; });
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("#checkpoints-card [data-checkpoint-action]");
    if (!button) return;
    var action = button.getAttribute("data-checkpoint-action");
    button.disabled = true;
    post("/api/v1/checkpoints/" + button.getAttribute("data-id") + "/" + action + "/").then(function (c) {
      say("checkpoints-message", (action === "promote" ? "Promoted " : "Rolled back to ") + c.model_name + ":" +
        c.version + ". Reload to see the ranking.");
    }).catch(function (err) {
      say("checkpoints-message", action + ": " + err.message);
      button.disabled = false;
    });
  });

  function cell(text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function actionButton(action, label, id) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "button button--small";
    b.dataset.checkpointAction = action;
    b.dataset.id = id;
    b.textContent = label;
    return b;
  }

  function badge(text, kind) {
    var b = document.createElement("span");
    b.className = "badge badge--" + kind;
    b.textContent = text;
    return b;
  }

  // The checkpoint ranking (templates/dashboard/_checkpoints.html), re-sent by the server when a
  // training run ends: [{model, rows: [{id, rank, version, net_edge, metric, state, active, pinned,
  // created_at, load_error, evidence, evidence_line, replaced}]}].
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
        tr.dataset.state = c.state || "";
        tr.appendChild(cell(c.net_edge === null || c.net_edge === undefined ? "—" : Number(c.net_edge).toFixed(2), "num"));
        tr.appendChild(cell(c.metric === null || c.metric === undefined ? "—" : Number(c.metric).toFixed(4), "num"));
        var state = cell("");
        if (c.state === "live" || (!c.state && c.active)) state.appendChild(badge("live", "ok"));
        else if (c.state === "shadow") state.appendChild(badge("shadow", "warn"));
        else if (c.state) state.appendChild(badge("retired", "muted"));
        if (c.pinned) state.appendChild(badge("pinned", "info"));
        if (c.load_error) state.appendChild(badge("unloadable", "bad"));
        tr.appendChild(state);
        var evidence = cell(c.evidence_line || "", "small");
        evidence.title = (c.evidence && c.evidence.why) || "";
        tr.appendChild(evidence);
        var actions = cell("");
        var admin = (document.getElementById("checkpoints-card") || {}).dataset;
        if (admin && admin.canAdmin === "1") {
          if (c.state === "shadow") actions.appendChild(actionButton("promote", "Promote", c.id));
          if (c.active && c.replaced) actions.appendChild(actionButton("rollback", "Roll back", c.id));
        }
        tr.appendChild(actions);
        body.appendChild(tr);
      });
    });
    if (!body.children.length) {
      var empty = cell("No checkpoint yet.", "muted small");
      empty.colSpan = 8;
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
