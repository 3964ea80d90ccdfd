/*
 * gogo control panel (templates/dashboard/control.html). Buttons and sliders post JSON to the
 * /control/<action>/ endpoints (apps/dashboard/control_views.py); the page then follows the
 * "audit" messages pushed on /ws/dashboard/ (one per control action, by anyone), which update the
 * audit log and the controls' state. Ticks show the latest decision and the edge and margin it used (bps) and why each model has its weight.
 */
(function () {
  "use strict";

  var root = document.getElementById("control");
  if (!root) return;
  var h = window.gogo.util.h;
  var canTrade = root.dataset.canTrade === "true", canAdmin = root.dataset.canAdmin === "true";
  var message = document.getElementById("control-message");
  var audit = document.getElementById("audit");
  var URLS = { stream: root.dataset.streamUrl, trading: root.dataset.tradingUrl, thresholds: root.dataset.thresholdsUrl,
               model: root.dataset.modelUrl, kill: root.dataset.killUrl };

  function csrfToken() {
    var input = root.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function say(text, isError) {
    message.textContent = text || "";
    message.classList.toggle("is-error", !!isError);
  }

  function post(kind, body) {
    return fetch(URLS[kind], {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().catch(function () { return { error: "HTTP " + response.status }; }).then(function (data) {
        if (!response.ok) throw new Error(data.error || "HTTP " + response.status);
        return data;
      });
    });
  }

  // ---------------------------------------------------------------- state shown by the controls

  function setBadge(node, text, kind) {
    if (!node) return;
    node.textContent = text;
    node.className = "badge" + (kind ? " badge--" + kind : "");
  }

  function showStream(instrument, running) {
    var row = root.querySelector('#instruments tr[data-instrument="' + instrument + '"]');
    if (!row) return;
    setBadge(row.querySelector('[data-field="stream"]'), running ? "running" : "stopped", running ? "ok" : "");
    var button = row.querySelector('[data-control="stream"]');
    button.dataset.on = String(!running);
    button.textContent = running ? "Stop" : "Start";
  }

  function showTrading(instrument, on) {
    var row = root.querySelector('#instruments tr[data-instrument="' + instrument + '"]');
    var button = row && row.querySelector('[data-control="trading"]');
    if (!button) return;
    setBadge(row.querySelector('[data-field="trading"]'), on ? "on" : "off", on ? "ok" : "warn");
    button.dataset.on = String(!on);
    button.textContent = on ? "Stop trading" : "Start trading";
  }

  function showThreshold(instrument, name, value) {
    var form = root.querySelector('form.thresholds[data-instrument="' + instrument + '"]');
    if (!form || typeof value !== "number") return;
    var input = form.querySelector('input[name="' + name + '"]');
    if (document.activeElement !== input) input.value = String(value);
    form.querySelector('output[data-for="' + name + '"]').textContent = value.toFixed(1);
  }

  function showKill(account, on) {
    var row = root.querySelector('#accounts li[data-account="' + account + '"]');
    if (!row) return;
    setBadge(row.querySelector('[data-field="kill"]'), on ? "KILL SWITCH ON" : "trading", on ? "bad" : "ok");
    var button = row.querySelector('[data-control="kill"]');
    button.dataset.on = String(!on);
    button.textContent = on ? "Release" : "Kill switch";
    button.classList.toggle("button--danger", !on);
  }

  function showModel(name, enabled) {
    var row = root.querySelector('#models li[data-model="' + name + '"]');
    if (!row) return;
    setBadge(row.querySelector('[data-field="enabled"]'), enabled ? "enabled" : "disabled", enabled ? "ok" : "");
    var button = row.querySelector('[data-control="model"]');
    button.dataset.on = String(!enabled);
    button.textContent = enabled ? "Disable" : "Enable";
  }

  // ---------------------------------------------------------------- actions

  root.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-control]");
    if (!button || button.disabled) return;
    var kind = button.dataset.control, on = button.dataset.on === "true", body;
    if (kind === "stream" || kind === "trading") body = { instrument: +button.dataset.instrument, on: on };
    else if (kind === "kill") body = { account: +button.dataset.account, on: on };
    else if (kind === "model") body = { model: button.dataset.model, on: on };
    else return;
    button.disabled = true;
    say("…", false);
    post(kind, body).then(function (data) {
      if (kind === "stream") showStream(data.instrument, data.desired === "running");
      if (kind === "trading") showTrading(data.instrument, data.trading_enabled);
      if (kind === "kill") showKill(data.account, data.kill_switch);
      if (kind === "model") showModel(data.model, data.enabled);
      say("Done.", false);
    }).catch(function (err) { say(err.message, true); })
      .then(function () { button.disabled = kind === "stream" ? !canAdmin : !canTrade; });
  });

  Array.prototype.forEach.call(root.querySelectorAll("form.thresholds"), function (form) {
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    form.addEventListener("input", function (event) {  // the number follows the thumb while dragging
      var out = form.querySelector('output[data-for="' + event.target.name + '"]');
      if (out) out.textContent = parseFloat(event.target.value).toFixed(1);
    });
    form.addEventListener("change", function (event) {  // sent once, when the thumb is released
      var input = event.target, body = { instrument: +form.dataset.instrument };
      body[input.name] = parseFloat(input.value);
      say("…", false);
      post("thresholds", body).then(function (data) {
        showThreshold(data.instrument, "margin_bps", data.margin_bps);
        say("Applied: act above " + data.margin_bps.toFixed(1) + " bps of expected net edge. The next decision uses it.",
            false);
      }).catch(function (err) { say(err.message, true); });
    });
  });

  // ---------------------------------------------------------------- live: audit entries and decisions

  function auditRow(e) {
    var ts = e.ts || "";
    return h("tr", { "data-id": String(e.id), class: "is-new" }, [
      h("td", { class: "nowrap", text: ts.slice(0, 10) + " " + ts.slice(11, 19) }), h("td", { text: e.user }),
      h("td", { text: e.action }), h("td", { text: e.target }),
    ]);
  }

  function applyAudit(e) {
    if (audit.querySelector('tr[data-id="' + e.id + '"]')) return;
    var empty = audit.querySelector(".audit-empty");
    if (empty) empty.remove();
    audit.insertBefore(auditRow(e), audit.firstChild);
    while (audit.children.length > 50) audit.removeChild(audit.lastChild);
    var p = e.payload || {}, verb = e.action.split(".")[1], target = e.target_id;
    if (e.action.indexOf("stream.") === 0) showStream(target, verb === "start");
    else if (e.action.indexOf("trading.") === 0) showTrading(target, verb === "start");
    else if (e.action.indexOf("kill_switch.") === 0) showKill(target, verb === "on");
    else if (e.action.indexOf("model.") === 0) showModel(p.model_name, verb === "enable");
    else if (e.action === "orchestrator.update") {
      if (p.margin_bps) showThreshold(target, "margin_bps", p.margin_bps.to);
    }
  }

  function applyTick(u) {
    var d = (u.decisions || [])[0];
    if (!d) return;
    var node = document.getElementById("last-decision");
    node.querySelector('[data-field="decision"]').textContent =
      window.gogo.util.fmtTime(u.ts) + " · " + d.action + (d.reason ? " (" + d.reason + ")" : "");
    var edge = d.edge_bps, margin = typeof d.margin_bps === "number" ? d.margin_bps : d.threshold;
    node.querySelector('[data-field="threshold"]').textContent =
      (typeof edge === "number" ? (edge >= 0 ? "+" : "") + edge.toFixed(1) + " bps" : "no edge") +
      (typeof margin === "number" ? " / " + margin.toFixed(1) + " bps" : "");
    var why = (d.gating || {}).why || {};
    node.querySelector('[data-field="why"]').textContent =
      Object.keys(why).sort().map(function (n) { return why[n]; }).join(" · ") || "—";
  }

  var retryMs = 1000, conn = document.getElementById("conn");

  function setConn(kind, text) { conn.className = "conn conn--" + kind; conn.textContent = text; }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + root.dataset.wsPath);
    setConn("connecting", "connecting");
    socket.onopen = function () { retryMs = 1000; setConn("live", "live"); };
    socket.onmessage = function (event) {
      var u;
      try { u = JSON.parse(event.data); } catch (e) { return; }
      if (u.type === "audit" && u.entry) applyAudit(u.entry);
      else if (u.type === "tick") applyTick(u);
    };
    socket.onclose = function (event) {
      if (event.code === 4401) { setConn("down", "signed out"); return; }
      setConn("down", "reconnecting");
      window.setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    };
  }

  window.gogoControl = { applyAudit: applyAudit };  // for the browser tests and the console
  connect();
})();
