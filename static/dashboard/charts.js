/*
 * gogo dashboard charts (Plotly): 1 s candles with decision markers, the COB heatmap and the
 * imbalance moving averages, each redrawn with Plotly.react from the bounded dashboard state
 * (window.gogo.charts; the state is described in dashboard.js).
 */
window.gogo = window.gogo || {};
window.gogo.charts = (function () {
  "use strict";

  var isNum = window.gogo.util.isNum, fmtPct = window.gogo.util.fmtPct;
  var COLORS = { buy: "#22b573", sell: "#ef5350", text: "#dce3ee", muted: "#8894a8", grid: "#1f2a3c" };
  var MA_LINES = [
    { key: "imbalance_5", name: "imb ±5", color: "#5b6b85", width: 1, dash: "solid" },
    { key: "1s", name: "1s", color: "#9aa7bd", width: 1, dash: "dot" },
    { key: "5s", name: "5s", color: "#4f8cff", width: 1.5, dash: "solid" },
    { key: "15s", name: "15s", color: "#f0b429", width: 1.5, dash: "solid" },
    { key: "60s", name: "60s", color: "#e86bd1", width: 2, dash: "solid" },
  ];

  var plotConfig = { displayModeBar: false, responsive: true };
  var revision = 0;

  function baseLayout(state, extra) {
    var range;
    if (state.lastTs !== null) {
      // The window's data fill the width (at least 60 s of it) instead of hugging the right edge.
      var first = Math.min(state.candles.length ? state.candles[0].t : Infinity, state.frames.length ? state.frames[0].ts : Infinity);
      var start = Math.max(isFinite(first) ? first : -Infinity, state.lastTs - state.windowMs);
      range = [Math.min(start, state.lastTs - 60000) - 500, state.lastTs + 1500];
    }
    var layout = {
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#0e1420",
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11, color: COLORS.muted },
      margin: { l: 8, r: 64, t: 6, b: 26 },
      showlegend: false,
      hovermode: "x",
      datarevision: ++revision,
      xaxis: {
        type: "date", range: range, gridcolor: COLORS.grid, linecolor: COLORS.grid, zeroline: false,
        tickformat: "%H:%M:%S", hoverformat: "%H:%M:%S", fixedrange: true,
      },
      yaxis: { side: "right", gridcolor: COLORS.grid, linecolor: COLORS.grid, zeroline: false, fixedrange: true },
    };
    Object.keys(extra || {}).forEach(function (k) {
      layout[k] = typeof extra[k] === "object" && !Array.isArray(extra[k]) && layout[k]
        ? Object.assign({}, layout[k], extra[k]) : extra[k];
    });
    return layout;
  }

  function waitingAnnotation(text) {
    return [{ text: text, xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false,
              font: { size: 13, color: COLORS.muted } }];
  }

  function candles(div, state) {
    var c = state.candles;
    var x = new Array(c.length), o = new Array(c.length), hi = new Array(c.length);
    var lo = new Array(c.length), cl = new Array(c.length), byTime = {};
    var top = -Infinity, bottom = Infinity;
    for (var i = 0; i < c.length; i++) {
      x[i] = c[i].t; o[i] = c[i].o; hi[i] = c[i].h; lo[i] = c[i].l; cl[i] = c[i].c;
      byTime[c[i].t] = c[i];
      if (c[i].h > top) top = c[i].h;
      if (c[i].l < bottom) bottom = c[i].l;
    }
    var pad = isFinite(top) ? Math.max((top - bottom) * 0.04, top * 0.00005) : 0;
    var marks = { BUY: { x: [], y: [], text: [], filled: [] }, SELL: { x: [], y: [], text: [], filled: [] } };
    state.decisions.forEach(function (d) {
      var candle = byTime[d.ts] || nearestCandle(state.candles, d.ts);
      var m = marks[d.action];
      if (!candle || !m) return;
      m.x.push(d.ts);
      m.y.push(d.action === "BUY" ? candle.l - pad : candle.h + pad);
      var order = d.order;
      m.filled.push(!order || order.status !== "REJECTED");  // a rejected order is drawn hollow
      m.text.push(d.action + " · conf " + fmtPct(d.confidence) +
        (order ? "<br>" + order.status + " " + order.quantity + (order.price ? " @ " + order.price : "") +
          (order.reason ? "<br>" + order.reason : "") : ""));
    });
    var traces = [
      {
        type: "candlestick", name: state.symbol, x: x, open: o, high: hi, low: lo, close: cl,
        increasing: { line: { color: COLORS.buy, width: 1 }, fillcolor: COLORS.buy },
        decreasing: { line: { color: COLORS.sell, width: 1 }, fillcolor: COLORS.sell },
        whiskerwidth: 0, hoverlabel: { bgcolor: "#182132" },
      },
      markerTrace("BUY", marks.BUY, "triangle-up", COLORS.buy),
      markerTrace("SELL", marks.SELL, "triangle-down", COLORS.sell),
    ];
    var layout = baseLayout(state, {
      xaxis: { rangeslider: { visible: false } },
      yaxis: { tickformat: ",.2f" },
      annotations: c.length ? [] : waitingAnnotation("Waiting for candles: start the replay session"),
    });
    Plotly.react(div, traces, layout, plotConfig);
  }

  function markerTrace(name, m, symbol, color) {
    return {
      type: "scatter", mode: "markers", name: name, x: m.x, y: m.y, text: m.text,
      hovertemplate: "%{text}<extra></extra>",
      marker: {
        symbol: symbol, size: 13,
        color: m.filled.map(function (f) { return f ? color : "rgba(0,0,0,0)"; }),
        line: { color: m.filled.map(function (f) { return f ? "#0b0f17" : color; }), width: 1.5 },
      },
    };
  }

  function nearestCandle(list, ts) {
    for (var i = list.length - 1; i >= 0; i--) {
      if (list[i].t <= ts) return list[i];
    }
    return null;
  }

  // The bucket grid moves with the mid, so each column is placed on one absolute price grid
  // (row k = price k * width): the heatmap shows prices, not bucket indices.
  //
  // Colour modes: "imbalance" is (bid - ask) / (bid + ask) per bucket; in an uncrossed book it is
  // +1 below the mid and -1 above it except in the mid's bucket. "depth" keeps that sign and scales
  // it by sqrt(bucket depth / 95th-percentile depth of the window), so liquidity walls stand out
  // as in Bookmap. Both lie in [-1, 1] on the same diverging scale.
  function heatmap(div, state) {
    var frames = state.frames;
    if (!frames.length) {
      Plotly.react(div, [{ type: "heatmap", x: [], y: [], z: [[]], showscale: false }],
                   baseLayout(state, { annotations: waitingAnnotation("Waiting for order-book frames") }), plotConfig);
      return;
    }
    var width = frames[frames.length - 1].width;
    var kMin = Infinity, kMax = -Infinity, usable = [];
    frames.forEach(function (f) {
      if (f.width !== width || !f.imbalance || !f.imbalance.length) return;
      var k0 = Math.round(f.first / width);
      usable.push({ f: f, k0: k0 });
      if (k0 < kMin) kMin = k0;
      if (k0 + f.imbalance.length - 1 > kMax) kMax = k0 + f.imbalance.length - 1;
    });
    var scale = state.heatmapMode === "depth" ? depthScale(usable) : 0;
    var rows = kMax - kMin + 1, cols = usable.length;
    var x = new Array(cols), mid = new Array(cols), y = new Array(rows), z = new Array(rows), info = new Array(rows);
    for (var r = 0; r < rows; r++) {
      y[r] = (kMin + r) * width + width / 2;  // bucket [edge, edge + width) drawn around its centre
      z[r] = new Array(cols).fill(null);
      info[r] = new Array(cols).fill(null);
    }
    usable.forEach(function (u, col) {
      var f = u.f, offset = u.k0 - kMin, imb = f.imbalance, bid = f.bid || [], ask = f.ask || [];
      x[col] = f.ts;
      mid[col] = f.mid;
      for (var i = 0; i < imb.length; i++) {
        var depth = (bid[i] || 0) + (ask[i] || 0);
        z[offset + i][col] = scale ? Math.max(-1, Math.min(1, imb[i] * Math.sqrt(depth / scale))) : imb[i];
        info[offset + i][col] = [bid[i] || 0, ask[i] || 0, imb[i]];
      }
    });
    var traces = [
      {
        type: "heatmap", x: x, y: y, z: z, customdata: info, zmin: -1, zmax: 1, zmid: 0,
        hoverongaps: false, showscale: false,
        colorscale: [[0, "#ff5a4f"], [0.25, "#a3302f"], [0.5, "#121926"], [0.75, "#157a4f"], [1, "#2be28b"]],
        hovertemplate: "%{x|%H:%M:%S} · %{y:,.2f}<br>bid $%{customdata[0]:,.0f} · ask $%{customdata[1]:,.0f}" +
                       "<br>imbalance %{customdata[2]:.2f}<extra></extra>",
      },
      {
        type: "scatter", mode: "lines", name: "mid", x: x, y: mid,
        line: { color: "#f2f4f8", width: 1.2 }, hovertemplate: "mid %{y:,.2f}<extra></extra>",
      },
    ];
    Plotly.react(div, traces, baseLayout(state, { yaxis: { tickformat: ",.0f" }, hovermode: "closest" }), plotConfig);
  }

  // 95th percentile of non-empty bucket depth (USD) over the window: robust to a single huge wall.
  function depthScale(usable) {
    var depths = [];
    usable.forEach(function (u) {
      var bid = u.f.bid || [], ask = u.f.ask || [];
      for (var i = 0; i < bid.length; i++) {
        var d = (bid[i] || 0) + (ask[i] || 0);
        if (d > 0) depths.push(d);
      }
    });
    if (!depths.length) return 0;
    depths.sort(function (a, b) { return a - b; });
    return depths[Math.floor((depths.length - 1) * 0.95)];
  }

  function ma(div, state) {
    var frames = state.frames;
    var x = frames.map(function (f) { return f.ts; });
    var traces = MA_LINES.map(function (line) {
      return {
        type: "scatter", mode: "lines", name: line.name, x: x,
        y: frames.map(function (f) {
          var v = line.key === "imbalance_5" ? f.imbalance_5 : (f.ma || {})[line.key];
          return isNum(v) ? v : null;
        }),
        line: { color: line.color, width: line.width, dash: line.dash },
        hovertemplate: line.name + " %{y:.3f}<extra></extra>",
      };
    });
    var extent = 0.1;  // symmetric around 0, at least ±0.1, so the sign always reads at a glance
    traces.forEach(function (t) { t.y.forEach(function (v) { if (v !== null && Math.abs(v) > extent) extent = Math.abs(v); }); });
    extent = Math.min(1, extent * 1.1);
    Plotly.react(div, traces, baseLayout(state, {
      showlegend: true,
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 10 }, bgcolor: "rgba(0,0,0,0)" },
      margin: { l: 8, r: 64, t: 22, b: 24 },
      yaxis: { range: [-extent, extent], nticks: 5, tickformat: ".2f", zeroline: true, zerolinecolor: "#3a4860" },
      annotations: frames.length ? [] : waitingAnnotation("Waiting for order-book frames"),
    }), plotConfig);
  }

  return { candles: candles, heatmap: heatmap, ma: ma };
})();
