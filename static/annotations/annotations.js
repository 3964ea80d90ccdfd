/*
 * gogo annotation page: load candles + heatmap + annotations for an instrument and range, mark a
 * trade with the position tool (tool.js: click the entry, then the exit; drag the handles to edit), save,
 * edit and delete your own, and follow everyone's changes live over /ws/annotations/.
 *
 * Times are ms since the epoch (UTC) everywhere; the datetime inputs show UTC.
 */
(function () {
  "use strict";

  var util = window.gogo.util, chart = window.gogo.annotateChart;
  var root = document.getElementById("annotate");
  var cfg = JSON.parse(document.getElementById("annotate-config").textContent);
  var TF_MS = { "1s": 1000, "1m": 60000, "1h": 3600000 };
  var $ = function (id) { return document.getElementById(id); };
  var plot = $("chart-annotate"), overlay = $("tool-overlay");

  var state = {
    instrument: cfg.instruments.length ? cfg.instruments[0] : null, timeframe: "1s", start: null, end: null,
    candles: [], heatmap: null, annotations: {}, draft: null, selected: null, tool: false, side: "long",
    uirevision: 1,
  };
  window.gogoAnnotate = { state: state };

  // ---- small helpers -------------------------------------------------------------------------
  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  function toInput(ms) { return ms === null || ms === undefined ? "" : new Date(ms).toISOString().slice(0, 19); }
  function fromInput(v) {
    if (!v) return null;
    var ms = Date.parse((v.length === 16 ? v + ":00" : v) + "Z");
    return isFinite(ms) ? ms : null;
  }
  function roundTick(p) {
    var tick = (state.instrument && state.instrument.tick) || 0.01;
    var digits = Math.max(0, Math.min(8, Math.round(-Math.log10(tick))));
    return +(Math.round(p / tick) * tick).toFixed(digits);
  }
  function alertBox(text) { var el = $("annotate-alert"); el.textContent = text || ""; el.hidden = !text; }
  function isMine(a) { return a.owner === cfg.user.id; }
  function canEdit(a) { return cfg.user.can_annotate && (isMine(a) || cfg.user.staff); }

  function request(method, url, body) {
    var opts = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    if (method !== "GET") opts.headers["X-CSRFToken"] = csrfToken();
    return fetch(url, opts).then(function (r) {
      if (r.status === 204) return { ok: true, status: 204, data: null };
      return r.json().then(function (d) { return { ok: r.ok, status: r.status, data: d }; },
                           function () { return { ok: false, status: r.status, data: { error: "HTTP " + r.status } }; });
    });
  }

  // ---- loading -------------------------------------------------------------------------------
  function load(useRange) {
    if (!state.instrument) { alertBox("No instrument is configured."); return Promise.resolve(); }
    var params = new URLSearchParams({ instrument: state.instrument.id });
    if (useRange) {
      params.set("timeframe", state.timeframe);
      if (state.start !== null) params.set("start", state.start);
      if (state.end !== null) params.set("end", state.end);
    }
    $("range-load").disabled = true;
    return request("GET", root.dataset.dataUrl + "?" + params).then(function (res) {
      $("range-load").disabled = false;
      if (!res.ok) { alertBox(res.data.error || "Could not load the chart."); return; }
      alertBox("");
      var d = res.data;
      state.timeframe = d.timeframe; state.start = d.start; state.end = d.end;
      state.candles = d.candles; state.heatmap = d.heatmap; state.annotations = {};
      d.annotations.forEach(function (a) { state.annotations[a.id] = a; });
      state.uirevision += 1;  // a new range resets the zoom
      $("heatmap-note").textContent = d.heatmap_note || "";
      $("heatmap-note").hidden = !d.heatmap_note;
      syncToolbar();
      render();
      root.dataset.loaded = String(+root.dataset.loaded + 1);
    }, function () { $("range-load").disabled = false; alertBox("The server cannot be reached."); });
  }

  function syncToolbar() {
    $("instrument").value = String(state.instrument.id);
    $("range-start").value = toInput(state.start);
    $("range-end").value = toInput(state.end);
    $("annotate-symbol").textContent = state.instrument.symbol;
    $("annotate-range").textContent = util.fmtTime(state.start).slice(0, 19) + " → " + util.fmtTime(state.end).slice(11);
    Array.prototype.forEach.call($("timeframes").children, function (b) {
      b.setAttribute("aria-pressed", b.dataset.tf === state.timeframe ? "true" : "false");
    });
  }

  // ---- drawing -------------------------------------------------------------------------------
  function items() {
    var list = Object.keys(state.annotations).map(function (k) { return state.annotations[k]; });
    list.sort(function (a, b) { return a.entry_time - b.entry_time || a.id - b.id; });
    return list;
  }

  function render() {
    var shown = items().filter(function (a) { return !(state.draft && state.draft.id === a.id); })
      .map(function (a) { return { a: a, mine: isMine(a), selected: state.selected === a.id }; });
    if (state.draft && state.draft.exit_time !== null) shown.push({ a: draftAnnotation(), mine: true, selected: true });
    var pad = (state.end - state.start) * 0.01;
    chart.draw(plot, {
      candles: state.candles, heatmap: state.heatmap, tfMs: TF_MS[state.timeframe], symbol: state.instrument.symbol,
      items: shown, range: [state.start - pad, state.end + pad], uirevision: state.uirevision,
    }).then(function () {
      if (!plot.dataset.hooked && plot.on) { plot.on("plotly_relayout", tool.place); plot.dataset.hooked = "1"; }
      tool.place();
    });
    renderList();
    renderEditor();
  }

  function draftAnnotation() {
    var d = state.draft;
    return { id: d.id, side: d.side, entry_time: d.entry_time, entry_price: d.entry_price, exit_time: d.exit_time,
             exit_price: d.exit_price, owner: cfg.user.id, owner_name: cfg.user.name, notes: d.notes };
  }

  function renderList() {
    var list = items();
    var nodes = list.map(function (a) {
      var m = chart.metrics(a, state.candles, TF_MS[state.timeframe]);
      var mine = isMine(a);
      var li = util.h("li", { class: "annotation" + (mine ? " annotation--own" : " annotation--other") +
        (state.selected === a.id ? " is-selected" : ""), "data-id": a.id }, [
        util.h("div", { class: "annotation__head" }, [
          util.h("span", { class: "annotation__side annotation__side--" + a.side, text: a.side.toUpperCase() }),
          util.h("span", { class: "num " + util.signClass(m.ret), text: (m.ret >= 0 ? "+" : "−") + Math.abs(m.ret * 100).toFixed(2) + "%" }),
          util.h("span", { class: "annotation__owner", text: mine ? "you" : a.owner_name }),
        ]),
        util.h("div", { class: "annotation__times num small muted",
                        text: util.fmtTime(a.entry_time).slice(11, 19) + " @ " + util.fmt(a.entry_price, 2) + " → " +
                              util.fmtTime(a.exit_time).slice(11, 19) + " @ " + util.fmt(a.exit_price, 2) }),
        a.notes ? util.h("div", { class: "annotation__notes small", text: a.notes }) : null,
        util.h("div", { class: "annotation__actions" }, [
          util.h("button", { type: "button", class: "button button--small", "data-act": "show", text: "Show" }),
          canEdit(a) ? util.h("button", { type: "button", class: "button button--small", "data-act": "edit", text: "Edit" }) : null,
          canEdit(a) ? util.h("button", { type: "button", class: "button button--small button--danger-outline", "data-act": "delete", text: "Delete" }) : null,
        ]),
      ]);
      return li;
    });
    if (!nodes.length) nodes = [util.h("li", { class: "muted small", text: "No annotation in this range yet." })];
    util.replaceChildren($("annotation-list"), nodes);
  }

  // ---- the position tool and the editor -------------------------------------------------------
  function setTool(on) {
    state.tool = on;
    var btn = $("tool-position");
    if (btn) btn.setAttribute("aria-pressed", on ? "true" : "false");
    if (on) {
      state.draft = { id: null, side: state.side, entry_time: null, entry_price: null, exit_time: null, exit_price: null, notes: "" };
      state.selected = null;
      hint("Click the entry on the candles.");
    }
    render();
  }

  function hint(text) { var el = $("tool-hint"); if (el) el.textContent = text; }

  var tool = window.gogo.positionTool(plot, overlay, {
    draft: function () { return state.draft; },
    placing: function () { return state.tool; },
    snapPrice: roundTick,
    onHover: function (t, p) {
      hint((state.draft.entry_time === null ? "Entry " : "Exit ") + util.fmtTime(t).slice(11) + " · " + util.fmt(p, 2));
    },
    onPlaced: function (which) {
      if (which === "entry") hint("Now click the exit.");
      else {
        state.tool = false;
        $("tool-position").setAttribute("aria-pressed", "false");
        hint("Drag the handles or edit the fields, then save.");
      }
      render();
    },
    onChange: render,
  });

  function renderEditor() {
    var d = state.draft, card = $("editor");
    card.hidden = !d || d.exit_time === null;
    if (card.hidden) return;
    $("editor-title").textContent = d.id ? "Edit annotation " + d.id : "New annotation";
    Array.prototype.forEach.call(card.querySelectorAll("[data-side]"), function (b) {
      b.setAttribute("aria-pressed", b.dataset.side === d.side ? "true" : "false");
    });
    setIfIdle("entry-time", toInput(d.entry_time)); setIfIdle("entry-price", String(d.entry_price));
    setIfIdle("exit-time", toInput(d.exit_time)); setIfIdle("exit-price", String(d.exit_price));
    setIfIdle("notes", d.notes || "");
    var m = chart.metrics(draftAnnotation(), state.candles, TF_MS[state.timeframe]);
    var res = $("editor-result");
    res.textContent = (m.ret >= 0 ? "+" : "−") + Math.abs(m.ret * 100).toFixed(2) + "%";
    res.className = "num " + util.signClass(m.ret);
    $("editor-metrics").textContent = "Worst price inside the trade " + util.fmt(m.worst, 2) +
      " · R:R " + (m.rr === null ? "—" : m.rr.toFixed(2)) + " · " + Math.round((d.exit_time - d.entry_time) / 1000) + " s";
    $("editor-delete").hidden = !d.id;
    $("editor-delete").textContent = "Delete";
  }

  function setIfIdle(id, value) { var el = $(id); if (document.activeElement !== el) el.value = value; }

  function editorInput() {
    var d = state.draft;
    if (!d) return;
    var et = fromInput($("entry-time").value), xt = fromInput($("exit-time").value);
    var ep = parseFloat($("entry-price").value), xp = parseFloat($("exit-price").value);
    if (et !== null) d.entry_time = et;
    if (xt !== null) d.exit_time = xt;
    if (isFinite(ep) && ep > 0) d.entry_price = ep;
    if (isFinite(xp) && xp > 0) d.exit_price = xp;
    d.notes = $("notes").value;
    render();
  }

  function save(e) {
    e.preventDefault();
    var d = state.draft;
    if (!d) return;
    var body = { instrument: state.instrument.id, side: d.side, entry_time: d.entry_time, entry_price: roundTick(d.entry_price),
                 exit_time: d.exit_time, exit_price: roundTick(d.exit_price), notes: d.notes || "" };
    var url = d.id ? root.dataset.itemsUrl + d.id + "/" : root.dataset.itemsUrl;
    $("editor-save").disabled = true;
    request(d.id ? "PATCH" : "POST", url, body).then(function (res) {
      $("editor-save").disabled = false;
      if (!res.ok) { showError(res.data.error || "Not saved (HTTP " + res.status + ")."); return; }
      state.annotations[res.data.annotation.id] = res.data.annotation;
      state.selected = res.data.annotation.id;
      state.draft = null;
      showError("");
      hint("Saved.");
      render();
    }, function () { $("editor-save").disabled = false; showError("The server cannot be reached."); });
  }

  function showError(text) { var el = $("editor-error"); el.textContent = text; el.hidden = !text; }

  function remove(id) {
    return request("DELETE", root.dataset.itemsUrl + id + "/").then(function (res) {
      if (!res.ok && res.status !== 404) { alertBox(res.data.error || "Not deleted."); return; }
      delete state.annotations[id];
      if (state.draft && state.draft.id === id) state.draft = null;
      render();
    });
  }

  function edit(a) {
    state.selected = a.id;
    state.draft = { id: a.id, side: a.side, entry_time: a.entry_time, entry_price: a.entry_price, exit_time: a.exit_time,
                    exit_price: a.exit_price, notes: a.notes };
    showError("");
    render();
  }

  // ---- live updates --------------------------------------------------------------------------
  var live = null;
  function connect() {
    live = window.gogo.liveSocket({
      url: function () {
        var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
        return scheme + window.location.host + root.dataset.wsPath + "?instrument=" + state.instrument.id;
      },
      onStatus: setConn,
      onRefused: function () { alertBox("Your session ended: sign in again."); },
      onMessage: function (data) {
        if (data.type === "subscribed") setConn(data.instrument === state.instrument.id ? "live" : "connecting");
        else if (data.type === "annotation") onEvent(data);
        else if (data.type === "error") alertBox(data.error);
      },
    });
  }
  function setConn(s) {
    var el = $("conn");
    el.className = "conn conn--" + s;
    el.textContent = s === "live" ? "live" : s === "down" ? "offline" : "connecting";
    root.dataset.live = s === "live" ? "true" : "false";
  }
  function onEvent(ev) {
    if (!state.instrument || ev.instrument !== state.instrument.id) {
      if (state.annotations[ev.id]) { delete state.annotations[ev.id]; render(); }  // moved away
      return;
    }
    var a = ev.annotation;
    if (ev.event === "deleted" || !a || a.instrument !== state.instrument.id || a.exit_time <= state.start || a.entry_time >= state.end) {
      delete state.annotations[ev.id];
      if (ev.event === "deleted" && state.draft && state.draft.id === ev.id) state.draft = null;
    } else {
      state.annotations[a.id] = a;
    }
    render();
  }

  // ---- wiring --------------------------------------------------------------------------------
  function init() {
    var select = $("instrument");
    cfg.instruments.forEach(function (i) {
      select.appendChild(util.h("option", { value: String(i.id), text: i.symbol + " · " + i.venue }));
    });
    cfg.timeframes.forEach(function (tf) {
      $("timeframes").appendChild(util.h("button", { type: "button", class: "seg__btn", "data-tf": tf, text: tf, "aria-pressed": "false" }));
    });
    select.addEventListener("change", function () {
      state.instrument = cfg.instruments.filter(function (i) { return String(i.id) === select.value; })[0];
      state.draft = null; state.selected = null;
      if (live && live.send({ subscribe: state.instrument.id })) setConn("connecting");
      load(false);
    });
    $("timeframes").addEventListener("click", function (e) {
      if (!e.target.dataset.tf) return;
      state.timeframe = e.target.dataset.tf;
      load(true);
    });
    $("range-form").addEventListener("submit", function (e) {
      e.preventDefault();
      state.start = fromInput($("range-start").value); state.end = fromInput($("range-end").value);
      load(true);
    });
    $("range-session").addEventListener("click", function () { load(false); });
    if ($("tool-position")) {
      $("tool-position").addEventListener("click", function () { setTool(!state.tool); });
      $("tool-side").addEventListener("click", function (e) {
        if (!e.target.dataset.side) return;
        state.side = e.target.dataset.side;
        Array.prototype.forEach.call($("tool-side").children, function (b) {
          b.setAttribute("aria-pressed", b.dataset.side === state.side ? "true" : "false");
        });
        if (state.draft) { state.draft.side = state.side; render(); }
      });
    }
    $("editor-form").addEventListener("click", function (e) {
      if (e.target.dataset.side && state.draft) { state.draft.side = e.target.dataset.side; render(); }
    });
    ["entry-time", "entry-price", "exit-time", "exit-price", "notes"].forEach(function (id) {
      $(id).addEventListener("change", editorInput);
    });
    $("notes").addEventListener("input", function () { if (state.draft) state.draft.notes = $("notes").value; });
    $("editor-form").addEventListener("submit", save);
    $("editor-cancel").addEventListener("click", function () { state.draft = null; setTool(false); hint("Cancelled."); });
    $("editor-delete").addEventListener("click", function (e) {
      var btn = e.target;
      if (btn.dataset.confirm !== "1") { btn.dataset.confirm = "1"; btn.textContent = "Really delete?"; return; }
      btn.dataset.confirm = "";
      if (state.draft && state.draft.id) remove(state.draft.id);
    });
    $("annotation-list").addEventListener("click", function (e) {
      var act = e.target.dataset.act, li = e.target.closest("[data-id]");
      if (!act || !li) return;
      var a = state.annotations[li.dataset.id];
      if (!a) return;
      if (act === "show") { state.selected = a.id; render(); }
      else if (act === "edit") edit(a);
      else if (act === "delete") {
        if (e.target.dataset.confirm !== "1") { e.target.dataset.confirm = "1"; e.target.textContent = "Really delete?"; return; }
        remove(a.id);
      }
    });
    window.addEventListener("resize", function () { window.requestAnimationFrame(tool.place); });
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && state.tool) { state.draft = null; setTool(false); hint("Cancelled."); }
    });
    if (state.instrument) load(false).then(connect);
    else alertBox("No instrument is configured.");
  }

  init();
})();
