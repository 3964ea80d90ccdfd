/*
 * gogo dashboard: fills the charts from /dashboard/history/ once, then applies each update pushed
 * on /ws/dashboard/ (one per exchange second; shape: apps/pipeline/engine.py Engine._update).
 *
 * Updates only change the bounded state below (the last `windowSeconds` of exchange time); drawing
 * is coalesced to at most one frame per RENDER_MS, so a replay at "max" speed (tens of updates per
 * second) costs the same to draw as one at 1x.
 */
(function () {
  "use strict";

  var root = document.getElementById("dashboard");
  if (!root) return;
  var charts = window.gogo.charts, util = window.gogo.util;
  var h = util.h, replaceChildren = util.replaceChildren, isNum = util.isNum, fmt = util.fmt;
  var fmtUsd = util.fmtUsd, fmtPct = util.fmtPct, fmtTime = util.fmtTime, signClass = util.signClass;

  var RENDER_MS = 200;
  var COMPONENT_LABELS = {
    primary_1s: "ETH 1s", primary_1m: "ETH 1m", primary_1h: "ETH 1h", primary_1d: "ETH 1d",
    reference_1s: "BTC 1s", cob: "COB",
  };
  var cfg = {
    historyUrl: root.dataset.historyUrl,
    sessionUrl: root.dataset.sessionUrl,
    wsPath: root.dataset.wsPath,
    gate: parseFloat(root.dataset.gate) || 0.8,
    windowMs: (parseInt(root.dataset.windowSeconds, 10) || 300) * 1000,
  };

  var state = {
    symbol: "ETHUSDT",
    candles: [],    // {t, o, h, l, c, v}, ascending t (ms)
    frames: [],     // {ts, mid, first, width, imbalance[], imbalance_5, ma{}}, ascending ts
    decisions: [],  // {ts, action, edge_bps, margin_bps, reason, order?}, ascending ts
    fills: [],      // {ts, side, price, quantity}, ascending ts
    timeframe: "1s",  // of state.candles (frames are always 1 s)
    pivots: {},     // the latest update's floor pivots per timeframe {t, p, r1, r2, s1, s2}
    models: {},     // {name: {action, confidence, probs, accuracy: [acc, n]}}
    gating: null,   // {mode, weights: {name: w}, why: {name: reason for its weight}}
    equity: {},     // {account id: [[ts, USD], ...]}
    lastTs: null,
    prediction: null,
    completeness: null,
    accounts: {},
    gaps: {},
    session: readJson("session-data") || { state: "idle" },
    stopRequested: false,
    ticks: 0,
    windowMs: cfg.windowMs,
    heatmapMode: "size",
  };
  var MAX_CANDLES = 300;  // of a timeframe above 1 s
  var EQUITY_POINTS = 900;

  var el = {
    alert: byId("dashboard-alert"),
    conn: byId("conn"),
    lastPrice: byId("last-price"),
    candles: byId("chart-candles"),
    heatmap: byId("chart-heatmap"),
    profile: byId("chart-profile"),
    equity: byId("chart-equity"),
    timeframes: byId("timeframes"),
    candlesTitle: byId("candles-tf"),
    ma: byId("chart-ma"),
    sessionState: byId("session-state"),
    sessionTs: byId("session-ts"),
    sessionSpeed: byId("session-speed"),
    sessionError: byId("session-error"),
    sessionControls: byId("session-controls"),
    sessionMessage: byId("session-message"),
    speedSelect: byId("session-speed-select"),
    heatmapMode: byId("heatmap-mode"),
    modelStatus: byId("model-status"),
    modelAction: byId("model-action"),
    modelConfidence: byId("model-confidence"),
    modelProbs: byId("model-probs"),
    modelReason: byId("model-reason"),
    completeness: byId("completeness"),
    completenessGate: byId("completeness-gate"),
    positions: byId("positions"),
    gaps: byId("gaps"),
  };

  // ---------------------------------------------------------------- helpers

  function byId(id) { return document.getElementById(id); }

  function readJson(id) {
    var node = byId(id);
    if (!node) return null;
    try { return JSON.parse(node.textContent); } catch (e) { return null; }
  }

  function showAlert(message) {
    if (!el.alert) return;
    el.alert.textContent = message || "";
    el.alert.hidden = !message;
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  // ---------------------------------------------------------------- state updates

  // Insert or replace by time key; updates arrive in order, so this is almost always a push.
  function upsert(list, item, key) {
    var n = list.length;
    if (!n || list[n - 1][key] < item[key]) { list.push(item); return; }
    for (var i = n - 1; i >= 0; i--) {
      if (list[i][key] === item[key]) { list[i] = item; return; }
      if (list[i][key] < item[key]) { list.splice(i + 1, 0, item); return; }
    }
    list.unshift(item);
  }

  function trimBefore(list, key, cutoff) {
    var i = 0;
    while (i < list.length && list[i][key] < cutoff) i++;
    if (i) list.splice(0, i);
  }

  function advanceClock(ts) {
    if (isNum(ts) && (state.lastTs === null || ts > state.lastTs)) state.lastTs = ts;
  }

  function trim() {
    if (state.lastTs === null) return;
    var cutoff = state.lastTs - state.windowMs;
    if (state.timeframe === "1s") trimBefore(state.candles, "t", cutoff);
    else if (state.candles.length > MAX_CANDLES) state.candles.splice(0, state.candles.length - MAX_CANDLES);
    var first = state.candles.length ? Math.min(state.candles[0].t, cutoff) : cutoff;
    trimBefore(state.frames, "ts", cutoff);
    trimBefore(state.decisions, "ts", first);
    trimBefore(state.fills, "ts", first);
  }

  // A 1 s candle of an update folded into the open candle of the chart's timeframe.
  function addCandle(c) {
    var period = charts.PERIOD_MS[state.timeframe];
    if (period === 1000) { upsert(state.candles, Object.assign({}, c, { pv: pivotsFor(c.t) }), "t"); return; }
    var t = c.t - (c.t % period), last = state.candles[state.candles.length - 1];
    if (last && last.t === t) {
      if (c.t <= (last.lastT || 0)) return;  // already folded in (a reconnect's duplicate)
      last.h = Math.max(last.h, c.h); last.l = Math.min(last.l, c.l); last.c = c.c; last.v += c.v; last.lastT = c.t;
      if (!last.pv) last.pv = pivotsFor(t);
    } else if (!last || last.t < t) {
      state.candles.push({ t: t, o: c.o, h: c.h, l: c.l, c: c.c, v: c.v, lastT: c.t, pv: pivotsFor(t) });
    }
  }

  function pivotsFor(t) {
    var p = state.pivots[state.timeframe];
    return p && p.t === t ? { p: p.p, r1: p.r1, r2: p.r2, s1: p.s1, s2: p.s2 } : null;
  }

  function resetSeries() {
    state.candles = [];
    state.frames = [];
    state.decisions = [];
    state.lastTs = null;
  }

  function applyHistory(data) {
    state.symbol = data.symbol || state.symbol;
    state.candles = (data.candles || []).slice();
    state.frames = (data.frames || []).slice();
    state.decisions = (data.decisions || []).slice().sort(function (a, b) { return a.ts - b.ts; });
    state.fills = (data.fills || []).slice();
    if (data.pivots) state.pivots = data.pivots;
    state.timeframe = data.timeframe || state.timeframe;
    state.models = data.models || {};
    if (data.gating) {
      state.gating = { mode: data.gating.mode, weights: data.gating.weights || {}, why: data.gating.why || {} };
      Object.keys(data.gating.accuracy || {}).forEach(function (n) {
        if (state.models[n]) state.models[n].accuracy = data.gating.accuracy[n];
      });
    }
    state.lastTs = null;
    if (state.timeframe === "1s") state.candles.forEach(function (c) { advanceClock(c.t); });
    state.frames.forEach(function (f) { advanceClock(f.ts); });
    if (data.prediction) {
      state.prediction = data.prediction;
      state.completeness = data.prediction.completeness || null;
    }
    state.accounts = data.accounts || {};
    Object.keys(state.accounts).forEach(function (id) {
      var a = state.accounts[id];
      if (isNum(a.equity) && !(id in state.equity) && state.lastTs !== null) state.equity[id] = [[state.lastTs, a.equity]];
    });
    if (data.session) state.session = data.session;
    trim();
  }

  function applyTick(u) {
    if (u.type === "session" && u.session) {  // a session state change, if the server sends one
      state.session = u.session;
      if (u.session.state !== "running") state.stopRequested = false;
      schedule();
      return;
    }
    if (u.type !== "tick") return;
    state.ticks += 1;
    root.dataset.ticks = String(state.ticks);
    state.symbol = u.symbol || state.symbol;
    if (state.lastTs !== null && u.ts < state.lastTs - 5000) resetSeries();  // a new replay restarts the clock
    advanceClock(u.ts);
    var instruments = u.instruments || {};
    Object.keys(instruments).forEach(function (symbol) { state.gaps[symbol] = instruments[symbol].gaps; });
    var own = instruments[state.symbol] || {};
    if (u.pivots) state.pivots = u.pivots;
    if (own.candle) addCandle(own.candle);
    if (own.frame) upsert(state.frames, own.frame, "ts");
    var mine = u.accounts || {};  // the server sends only this user's accounts
    var deskGating = null;  // the desk's full gating record (with why) rides on each decision
    (u.decisions || []).forEach(function (d) {
      if (d.gating && !deskGating) deskGating = d.gating;
      if (d.action !== "HOLD" && String(d.account) in mine) {
        state.decisions.push({ ts: u.ts, action: d.action, edge_bps: d.edge_bps, margin_bps: d.margin_bps,
                               reason: d.reason, order: d.order });
      }
    });
    Object.keys(mine).forEach(function (id) {
      var a = mine[id];
      (a.new_fills || []).forEach(function (f) { upsert(state.fills, f, "ts"); });
      if (isNum(a.equity)) {
        var curve = state.equity[id] || (state.equity[id] = []);
        curve.push([u.ts, a.equity]);
        if (curve.length > EQUITY_POINTS) curve.splice(0, curve.length - EQUITY_POINTS);
      }
    });
    if (u.prediction) {
      state.prediction = u.prediction;
      var outputs = u.prediction.models || {}, accuracy = u.prediction.accuracy || {};
      Object.keys(outputs).forEach(function (n) {
        state.models[n] = Object.assign({}, outputs[n], { accuracy: accuracy[n] || (state.models[n] || {}).accuracy });
      });
      if (u.prediction.gating) state.gating = u.prediction.gating;
    }
    if (deskGating) state.gating = deskGating;
    if (u.completeness) state.completeness = u.completeness;
    if (u.accounts) {
      Object.keys(u.accounts).forEach(function (id) {  // names come with the page's history only
        var before = state.accounts[id];
        if (before && before.name && !u.accounts[id].name) u.accounts[id].name = before.name;
      });
      state.accounts = u.accounts;
    }
    // Ticks are the running session's heartbeat: they carry its exchange time.
    state.session = Object.assign({}, state.session, { ts: u.ts });
    if (["idle", "starting", "finished", "failed"].indexOf(state.session.state) >= 0) {
      state.session.state = "running";
      state.session.error = "";
      setMessage("", false);
    }
    trim();
    schedule();
  }

  // ---------------------------------------------------------------- drawing

  var renderTimer = null;
  var lastRender = 0;
  var renderCost = 0;  // ms of the last draw; the page never spends more than ~1/3 of its time drawing

  function schedule() {
    if (renderTimer !== null) return;
    var wait = Math.max(0, lastRender + Math.max(RENDER_MS, 3 * renderCost) - Date.now());
    renderTimer = window.setTimeout(function () {
      renderTimer = null;
      var start = Date.now();
      render();
      lastRender = Date.now();
      renderCost = lastRender - start;
    }, wait);
  }

  function render() {
    charts.candles(el.candles, state);
    root.dataset.renderedTimeframe = state.timeframe;  // which timeframe the candle chart shows
    charts.heatmap(el.heatmap, state);
    if (el.profile) charts.profile(el.profile, state);
    charts.ma(el.ma, state);
    if (el.equity) charts.equity(el.equity, state);
    window.gogo.panels.models(byId("models"), byId("weights"), state);
    if (state.candles.length) el.lastPrice.textContent = fmt(state.candles[state.candles.length - 1].c, 2) + " USDT";
    renderSession();
    renderModel();
    renderCompleteness();
    window.gogo.panels.accounts(el.positions, state);
    renderGaps();
  }

  function badge(node, text, kind) {
    if (!node) return;
    node.textContent = text;
    node.className = "badge" + (kind ? " badge--" + kind : "");
  }

  var SESSION_KIND = { running: "ok", starting: "info", finished: "info", failed: "bad", idle: "" };

  function renderSession() {
    var s = state.session || { state: "idle" };
    var label = s.state === "running" && state.stopRequested ? "stopping" : s.state || "idle";
    badge(el.sessionState, label, label === "stopping" ? "warn" : SESSION_KIND[s.state]);
    el.sessionTs.textContent = fmtTime(s.ts);
    el.sessionSpeed.textContent = s.speed === null || s.speed === undefined
      ? (s.state === "idle" ? "—" : "max") : s.speed + "x";
    el.sessionError.hidden = !s.error;
    el.sessionError.textContent = s.error || "";
    if (el.sessionControls) {
      var active = s.state === "running" || s.state === "starting";
      el.sessionControls.querySelector("[data-action=start]").disabled = active;
      el.sessionControls.querySelector("[data-action=stop]").disabled = !active || state.stopRequested;
    }
  }

  function bar(label, value, kind, extraClass, gate) {
    // Next to a gate, truncate (0.7999 is 79.9%, not a passing-looking 80.0%).
    var shown = gate !== undefined && isNum(value) ? Math.floor(value * 1000) / 1000 : value;
    var fill = h("div", { class: "bar__fill" + (kind ? " bar__fill--" + kind : ""),
                          style: "width:" + (isNum(value) ? Math.max(0, Math.min(1, value)) * 100 : 0) + "%" });
    var track = h("div", { class: "bar__track" }, [fill]);
    if (gate !== undefined) track.appendChild(h("div", { class: "bar__gate", style: "left:" + gate * 100 + "%",
                                                         title: "gate " + gate }));
    return h("div", { class: "bar" + (extraClass ? " " + extraClass : "") }, [
      h("span", { class: "bar__label", text: label }), track, h("span", { class: "bar__value", text: fmtPct(shown) }),
    ]);
  }

  function renderModel() {
    var p = state.prediction;
    if (!p) return;
    badge(el.modelStatus, p.status || "—", p.status === "predicted" ? "ok" : p.status === "skipped" ? "warn" : "");
    var action = p.status === "skipped" ? "—" : p.action || "—";
    el.modelAction.textContent = action;
    el.modelAction.className = "action action--" + action;
    el.modelConfidence.textContent = fmtPct(p.confidence);
    var probs = p.probs || {};
    replaceChildren(el.modelProbs, ["BUY", "SELL", "HOLD"].map(function (a) { return bar(a, probs[a], a); }));
    var reason = p.status === "skipped" ? "Skipped: " + (p.reason || "no reason given") : "";
    el.modelReason.hidden = !reason;
    el.modelReason.textContent = reason;
  }

  function renderCompleteness() {
    var c = state.completeness;
    if (!c) return;
    // Fixed order (a jsonb round trip sorts the keys), then any component we do not know yet.
    var keys = Object.keys(COMPONENT_LABELS).filter(function (k) { return k in c; })
      .concat(Object.keys(c).filter(function (k) { return k !== "overall" && !(k in COMPONENT_LABELS); }));
    // The gate applies to the overall score: components are only coloured full / partial / empty.
    var rows = keys.map(function (k) {
      return bar(COMPONENT_LABELS[k] || k, c[k], c[k] >= 1 ? "ok" : c[k] > 0 ? "partial" : "bad");
    });
    var overall = c.overall;
    rows.push(bar("Overall", overall, overall >= cfg.gate ? "ok" : "bad", "bar--overall", cfg.gate));
    replaceChildren(el.completeness, rows);
    var pass = isNum(overall) && overall >= cfg.gate;
    badge(el.completenessGate, "gate " + cfg.gate.toFixed(2) + (isNum(overall) ? (pass ? " · passed" : " · below") : ""),
          isNum(overall) ? (pass ? "ok" : "bad") : "");
  }

  function renderGaps() {
    var symbols = Object.keys(state.gaps);
    if (!symbols.length) return;
    var items = [];
    symbols.sort().forEach(function (s) {
      var n = state.gaps[s];
      items.push(h("dt", { text: s + (s === state.symbol ? " (traded)" : " (reference)") }));
      items.push(h("dd", { class: "num" + (n > 0 ? " neg" : ""), text: isNum(n) ? String(n) : "—" }));
    });
    replaceChildren(el.gaps, items);
  }

  // ---------------------------------------------------------------- session controls (staff)

  function setMessage(text, isError) {
    if (!el.sessionMessage) return;
    el.sessionMessage.textContent = text || "";
    el.sessionMessage.classList.toggle("is-error", !!isError);
  }

  function postSession(body) {
    setMessage("…", false);
    return fetch(cfg.sessionUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), "Accept": "application/json" },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.text().then(function (text) {
        var data = {};
        try { data = text ? JSON.parse(text) : {}; } catch (e) { data = { error: "HTTP " + response.status }; }
        if (data.session) state.session = data.session;
        if (!response.ok) {
          setMessage(data.error || "Request failed (HTTP " + response.status + ")", true);
        } else {
          setMessage(body.action === "start" ? "Session starting…" : body.action === "stop" ? "Stop requested."
            : "Speed set to " + (body.speed === "max" ? "max" : body.speed + "x") + ".", false);
          if (body.action === "stop") state.stopRequested = true;
          if (body.action === "start") state.stopRequested = false;
        }
        schedule();
      });
    }).catch(function (err) {
      setMessage("Network error: " + err.message, true);
    });
  }

  if (el.sessionControls) {
    el.sessionControls.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-action]");
      if (!button) return;
      var action = button.dataset.action;
      postSession(action === "start" ? { action: "start", speed: el.speedSelect.value } : { action: action });
    });
    el.speedSelect.addEventListener("change", function () {
      var s = state.session || {};
      if (s.state === "running" || s.state === "starting") postSession({ action: "speed", speed: el.speedSelect.value });
    });
    var speed = state.session && state.session.speed;
    el.speedSelect.value = speed === null || speed === undefined ? (state.session.state === "idle" ? "1" : "max") : String(speed);
    if (!el.speedSelect.value) el.speedSelect.value = "1";
  }

  if (el.timeframes) {
    el.timeframes.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-timeframe]");
      if (!button || button.dataset.timeframe === state.timeframe) return;
      Array.prototype.forEach.call(el.timeframes.querySelectorAll("button"), function (b) {
        b.setAttribute("aria-pressed", String(b === button));
      });
      state.timeframe = button.dataset.timeframe;
      if (el.candlesTitle) el.candlesTitle.textContent = button.textContent;
      state.candles = [];
      loadHistory();
    });
  }

  if (el.heatmapMode) {
    state.heatmapMode = el.heatmapMode.value;
    el.heatmapMode.addEventListener("change", function () { state.heatmapMode = el.heatmapMode.value; schedule(); });
  }

  // ---------------------------------------------------------------- live connection

  var retryMs = 1000;

  function setConn(kind, text) {
    if (!el.conn) return;
    el.conn.className = "conn conn--" + kind;
    el.conn.textContent = text;
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + cfg.wsPath);
    setConn("connecting", "connecting");
    socket.onopen = function () { retryMs = 1000; setConn("live", "live"); };
    socket.onmessage = function (event) {
      var update;
      try { update = JSON.parse(event.data); } catch (e) { return; }
      applyTick(update);
      // Other panels (streams.js, ...) take the updates they know from this one connection.
      document.dispatchEvent(new CustomEvent("gogo:update", { detail: update }));
    };
    socket.onclose = function (event) {
      if (event.code === 4401 || event.code === 4403) {
        setConn("down", "signed out");
        showAlert("The live connection was refused: sign in again.");
        return;
      }
      setConn("down", "reconnecting");
      window.setTimeout(function () { loadHistory().then(connect); }, retryMs);
      retryMs = Math.min(retryMs * 2, 30000);
    };
  }

  function loadHistory() {
    return fetch(cfg.historyUrl + "?timeframe=" + encodeURIComponent(state.timeframe), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) { applyHistory(data); showAlert(""); render(); })
      .catch(function (err) { showAlert("Could not load the dashboard history (" + err.message + ")."); render(); });
  }

  if (!window.Plotly) {
    showAlert("Plotly failed to load: charts are unavailable.");
    return;
  }
  window.gogoDashboard = { state: state, render: render };  // for the browser tests and the console
  loadHistory().then(connect);
})();
