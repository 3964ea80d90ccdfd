/*
 * gogo dashboard panels drawn from the dashboard state (dashboard.js calls them on each redraw):
 * each model's latest output, confidence and the share of its scored calls that made money after
 * costs; the orchestrator's weights as a bar chart with why each model has its weight (measured net
 * edge, too few calls, no calibrated edge); the user's accounts (PnL, position, equity, open orders).
 * window.gogo.panels.
 */
window.gogo = window.gogo || {};
window.gogo.panels = (function () {
  "use strict";

  var util = window.gogo.util, h = util.h, isNum = util.isNum, fmt = util.fmt, fmtPct = util.fmtPct;
  var fmtUsd = util.fmtUsd, signClass = util.signClass;

  function weightBar(name, w, max) {
    var width = isNum(w) && max > 0 ? Math.max(0, Math.min(1, w / max)) * 100 : 0;
    return h("div", { class: "bar", "data-model": name }, [
      h("span", { class: "bar__label", text: name }),
      h("div", { class: "bar__track" }, [h("div", { class: "bar__fill", style: "width:" + width + "%" })]),
      h("span", { class: "bar__value", text: isNum(w) ? fmt(w, 2) : "—" }),
    ]);
  }

  // models: <tbody> of the models table; weights: the weights bar chart's container.
  function models(body, weights, state) {
    if (!body) return;
    var names = Object.keys(state.models || {}).sort();
    var gating = state.gating || { weights: {} }, why = gating.why || {};
    if (!names.length) return;
    util.replaceChildren(body, names.map(function (name) {
      var m = state.models[name], acc = m.accuracy || [];
      var probs = m.probs || {};
      return h("tr", { "data-model": name }, [
        h("td", { text: name }),
        h("td", { class: "action--" + (m.action || ""), text: m.action || "—" }),
        h("td", { class: "num", text: fmtPct(m.confidence),
                  title: "P(BUY) " + fmtPct(probs.BUY) + " · P(SELL) " + fmtPct(probs.SELL) + " · P(HOLD) " + fmtPct(probs.HOLD) }),
        h("td", { class: "num", text: isNum(acc[0]) ? fmtPct(acc[0]) + " (" + acc[1] + ")" : (isNum(acc[1]) ? "— (" + acc[1] + ")" : "—"),
                  title: "share of scored calls with a positive net return after costs (calls scored)" }),
        h("td", { class: "num", text: isNum((gating.weights || {})[name]) ? fmt(gating.weights[name], 2) : "—",
                  title: why[name] || "" }),
      ]);
    }));
    if (weights) {
      var w = gating.weights || {}, max = 0;
      Object.keys(w).forEach(function (n) { if (w[n] > max) max = w[n]; });
      var bars = Object.keys(w).sort().map(function (n) { return weightBar(n, w[n], max); });
      if (gating.mode) bars.push(h("p", { class: "muted small", text: "weights: " + gating.mode }));
      Object.keys(why).sort().forEach(function (n) {
        bars.push(h("p", { class: "small gating-why", "data-model": n, text: why[n] }));
      });
      util.replaceChildren(weights, bars);
    }
  }

  function accounts(node, state) {
    var ids = Object.keys(state.accounts || {});
    if (!node) return;
    if (!ids.length) {
      util.replaceChildren(node, [h("p", { class: "muted small", text: "No trading account yet." })]);
      return;
    }
    var base = state.symbol.replace(/USDT$/, "");
    util.replaceChildren(node, ids.map(function (id) {
      var a = state.accounts[id];
      var qty = parseFloat(a.position), avg = parseFloat(a.average_price);
      var realized = a.realized_pnl, unrealized = a.unrealized_pnl;
      var total = isNum(a.pnl) ? a.pnl : realized;
      var open = a.open_orders || [];
      var kv = h("dl", { class: "kv" }, [
        h("dt", { text: "Equity" }), h("dd", { class: "num", text: isNum(a.equity) ? fmt(a.equity, 2) + " USD" : "—" }),
        h("dt", { text: "Realized" }), h("dd", { class: "num " + signClass(realized), text: fmtUsd(realized) }),
        h("dt", { text: "Unrealized" }), h("dd", { class: "num " + signClass(unrealized), text: fmtUsd(unrealized) }),
        h("dt", { text: "Orders / fills" }),
        h("dd", { class: "num", text: (isNum(a.orders) ? a.orders : "—") + " / " + (isNum(a.fills) ? a.fills : "—") }),
        h("dt", { text: "Open orders" }), h("dd", { class: "num", text: String(open.length) }),
      ]);
      var list = open.length ? h("ul", { class: "orders" }, open.slice(0, 5).map(function (o) {
        return h("li", { text: o.side + " " + o.type + " " + fmt(o.remaining, 4) + "/" + fmt(o.quantity, 4) +
                                (isNum(o.price) ? " @ " + fmt(o.price, 2) : "") });
      })) : null;
      return h("div", { class: "position", "data-account": id }, [
        h("div", { class: "position__head" }, [
          h("span", { class: "position__name", text: (a.name ? a.name + " · " : "") + "Account " + id }),
          h("span", { class: "position__total " + signClass(total), text: fmtUsd(total), title: "Total PnL" }),
        ]),
        h("div", { class: "position__qty muted small",
                   text: (isNum(qty) ? fmt(qty, 4) : "—") + " " + base + (isNum(avg) && qty ? " @ " + fmt(avg, 2) : "") +
                         (a.kill_switch ? " · KILL SWITCH ON" : "") + (a.risk_state && a.risk_state !== "ACTIVE" ? " · " + a.risk_state : "") }),
        kv, list,
      ]);
    }));
  }

  return { models: models, accounts: accounts };
})();
