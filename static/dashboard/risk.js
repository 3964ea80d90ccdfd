/* Risk card: submits the kill switch and orchestrator forms with fetch, refreshes every 5 s. */
(function () {
  "use strict";
  var card = document.getElementById("risk-card");
  if (!card) return;

  function post(form) {
    return fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                               headers: {"X-Requested-With": "fetch"}})
      .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); });
  }

  function message(text) {
    var el = document.getElementById("risk-message");
    if (el) el.textContent = text;
  }

  function render(data) {
    (data.accounts || []).forEach(function (a) {
      var box = card.querySelector('[data-account="' + a.id + '"]');
      if (!box) return;
      var state = box.querySelector('[data-field="state"]');
      state.textContent = a.state;
      state.className = "badge risk-state risk-state--" + a.state.toLowerCase();
      box.querySelector('[data-field="reason"]').textContent = a.reason || "";
      var list = box.querySelector('[data-field="events"]');
      list.textContent = "";
      (a.events.length ? a.events : [null]).forEach(function (e) {
        var li = document.createElement("li");
        if (e === null) { li.className = "muted"; li.textContent = "No risk event."; }
        else { li.textContent = e.ts.slice(11, 19) + " " + e.kind + " · " + e.rule + ": " + e.reason; }
        list.appendChild(li);
      });
    });
  }

  function refresh() {
    fetch(card.dataset.url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(render)
      .catch(function () {});
  }

  card.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var form = ev.target;
    post(form).then(function (res) {
      if (form.classList.contains("risk-kill")) { window.location.reload(); return; }
      message(res.ok ? "Applied: " + (res.body.changed.join(", ") || "no change") + ". Next decision uses it."
                     : "Refused: " + JSON.stringify(res.body.errors || res.body.error));
    });
  });
  setInterval(refresh, 5000);
})();
