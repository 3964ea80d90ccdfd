/*
 * Risk card (templates/dashboard/_risk.html): submits the kill switch and orchestrator forms with
 * fetch; follows the pushed updates (dashboard.js re-dispatches them as "gogo:update" events): each
 * tick carries the accounts' risk state and kill switch, and the card re-reads its risk events
 * (GET data-url) only when something happened: a state change, a rejected order, a stop, or a
 * kill switch action in the audit feed. No timer polls the server.
 */
(function () {
  "use strict";
  var card = document.getElementById("risk-card");
  if (!card) return;
  var shown = {};  // account id -> "state|kill" last drawn

  function post(form) {
    return fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                               headers: {"X-Requested-With": "fetch"}})
      .then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); });
  }

  function message(text) {
    var el = document.getElementById("risk-message");
    if (el) el.textContent = text;
  }

  function drawState(box, state, kill) {
    var badge = box.querySelector('[data-field="state"]');
    if (state) {
      badge.textContent = state;
      badge.className = "badge risk-state risk-state--" + state.toLowerCase();
    }
    var flag = box.querySelector('[data-field="kill"]');
    if (kill && !flag) {
      flag = document.createElement("span");
      flag.className = "badge badge--danger";
      flag.dataset.field = "kill";
      flag.textContent = "KILL SWITCH ON";
      badge.parentNode.appendChild(flag);
    } else if (!kill && flag) {
      flag.remove();
    }
    var form = box.querySelector("form.risk-kill");
    if (form) {
      form.querySelector("input[name=on]").value = kill ? "0" : "1";
      var button = form.querySelector("button");
      button.textContent = kill ? "Release kill switch" : "Kill switch";
      button.classList.toggle("button--danger", !kill);
    }
  }

  function render(data) {
    (data.accounts || []).forEach(function (a) {
      var box = card.querySelector('[data-account="' + a.id + '"]');
      if (!box) return;
      drawState(box, a.state, a.kill_switch);
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

  var pending = false;
  function refresh() {  // at most one request in flight, however many events arrive
    if (pending) return;
    pending = true;
    fetch(card.dataset.url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(render)
      .catch(function () {}).then(function () { pending = false; });
  }

  card.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var form = ev.target;
    post(form).then(function (res) {
      if (form.classList.contains("risk-kill")) {
        if (!res.ok) { message("Refused: " + (res.body.error || "")); return; }
        drawState(form.closest("[data-account]"), null, res.body.kill_switch);
        refresh();
        return;
      }
      message(res.ok ? "Applied: " + (res.body.changed.join(", ") || "no change") + ". Next decision uses it."
                     : "Refused: " + JSON.stringify(res.body.errors || res.body.error));
    });
  });

  document.addEventListener("gogo:update", function (event) {
    var u = event.detail || {};
    if (u.type === "audit" && u.entry && u.entry.action.indexOf("kill_switch.") === 0) { refresh(); return; }
    if (u.type !== "tick") return;
    var changed = false;
    Object.keys(u.accounts || {}).forEach(function (id) {
      var a = u.accounts[id], key = a.risk_state + "|" + a.kill_switch;
      var box = card.querySelector('[data-account="' + id + '"]');
      if (!box || shown[id] === key) return;
      if (shown[id] !== undefined) changed = true;
      shown[id] = key;
      drawState(box, a.risk_state, a.kill_switch);
    });
    (u.decisions || []).forEach(function (d) {
      if (d.stop || (d.order && d.order.status === "REJECTED")) changed = true;
    });
    if (changed) refresh();
  });
})();
