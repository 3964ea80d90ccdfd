/*
 * gogo dashboard: the learning panel. Accuracy and alerts are rendered with the page
 * (templates/dashboard/_learning.html); training progress arrives live as "training" updates on the
 * dashboard websocket (apps.predictions.learning.ProgressReporter), which dashboard.js re-dispatches
 * as "gogo:update" DOM events.
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

  document.addEventListener("gogo:update", function (event) {
    if (event.detail && event.detail.type === "training") render(event.detail);
  });
})();
