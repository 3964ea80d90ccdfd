/*
 * gogo dashboard charts (Plotly): candles of the chosen timeframe with floor pivots, decision and
 * fill markers; the COB heatmap (Bookmap-like: time x price coloured by resting size, or by
 * imbalance) with the latest depth profile beside it; the imbalance moving averages; the equity
 * curves. Each is redrawn with Plotly.react from the bounded dashboard state (window.gogo.charts;
 * the state is described in dashboard.js).
 */
window.gogo = window.gogo || {};
window.gogo.charts = (function () {
  "use strict";

  var isNum = window.gogo.util.isNum;
  var COLORS = { buy: "#22b573", sell: "#ef5350", text: "#dce3ee", muted: "#8894a8", grid: "#1f2a3c" };
  var MA_LINES = [
    { key: "imbalance_5", name: "imb ±5", color: "#5b6b85", width: 1, dash: "solid" },
    { key: "1s", name: "1s", color: "#9aa7bd", width: 1, dash: "dot" },
    { key: "5s", name: "5s", color: "#4f8cff", width: 1.5, dash: "solid" },
    { key: "15s", name: "15s", color: "#f0b429", width: 1.5, dash: "solid" },
    { key: "60s", name: "60s", color: "#e86bd1", width: 2, dash: "solid" },
  ];

  var PIVOT_LINES = [
    { key: "r2", color: "rgba(239,83,80,0.55)", dash: "dot" }, { key: "r1", color: "rgba(239,83,80,0.85)", dash: "dash" },
    { key: "p", color: "rgba(220,227,238,0.8)", dash: "dash" },
    { key: "s1", color: "rgba(34,181,115,0.85)", dash: "dash" }, { key: "s2", color: "rgba(34,181,115,0.55)", dash: "dot" },
  ];
  var PERIOD_MS = { "1s": 1000, "1m": 60000, "1h": 3600000, "1d": 86400000 };
  var TICK_FORMAT = { "1s": "%H:%M:%S", "1m": "%H:%M", "1h": "%d %b %H:%M", "1d": "%Y-%m-%d" };
  // Bookmap-like resting-size scale: empty is the background, thin liquidity blue, walls yellow to white.
  var SIZE_SCALE = [[0, "#0e1420"], [0.12, "#0d2a4a"], [0.3, "#1565c0"], [0.5, "#26c6da"], [0.7, "#ffee58"],
                    [0.88, "#ff9800"], [1, "#ffffff"]];
  var IMBALANCE_SCALE = [[0, "#ff5a4f"], [0.25, "#a3302f"], [0.5, "#121926"], [0.75, "#157a4f"], [1, "#2be28b"]];

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
    var c = state.candles, tf = state.timeframe || "1s", period = PERIOD_MS[tf];
    var x = new Array(c.length), o = new Array(c.length), hi = new Array(c.length);
    var lo = new Array(c.length), cl = new Array(c.length);
    var top = -Infinity, bottom = Infinity;
    for (var i = 0; i < c.length; i++) {
      x[i] = c[i].t; o[i] = c[i].o; hi[i] = c[i].h; lo[i] = c[i].l; cl[i] = c[i].c;
      if (c[i].h > top) top = c[i].h;
      if (c[i].l < bottom) bottom = c[i].l;
    }
    var pad = isFinite(top) ? Math.max((top - bottom) * 0.04, top * 0.00005) : 0;
    var marks = { BUY: { x: [], y: [], text: [], filled: [] }, SELL: { x: [], y: [], text: [], filled: [] } };
    state.decisions.forEach(function (d) {
      var candle = nearestCandle(c, d.ts);
      var m = marks[d.action];
      if (!candle || !m || d.ts >= candle.t + period) return;
      m.x.push(tf === "1s" ? d.ts : candle.t);
      m.y.push(d.action === "BUY" ? candle.l - pad : candle.h + pad);
      var order = d.order;
      m.filled.push(!order || order.status !== "REJECTED");  // a rejected order is drawn hollow
      m.text.push(d.action + (isNum(d.edge_bps) ? " · edge " + (d.edge_bps >= 0 ? "+" : "") + d.edge_bps.toFixed(1) + " bps" : "") +
        (isNum(d.margin_bps) ? " > margin " + d.margin_bps.toFixed(1) + " bps" : "") +
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
      fillTrace(state.fills || [], c.length ? c[0].t : 0),
    ].concat(tf === "1s" ? levelTraces(c, state.pivots["1m"]) : pivotTraces(c, period));
    var range;
    if (c.length && tf !== "1s") range = [c[0].t - period / 2, c[c.length - 1].t + period * 1.5];
    var layout = baseLayout(state, {
      xaxis: { rangeslider: { visible: false }, tickformat: TICK_FORMAT[tf], hoverformat: TICK_FORMAT[tf] },
      yaxis: { tickformat: ",.2f" },
      annotations: c.length ? [] : waitingAnnotation("Waiting for candles: start the replay session"),
    });
    if (range) layout.xaxis.range = range;
    Plotly.react(div, traces, layout, plotConfig);
  }

  // Floor pivots in force during each candle (ml/features/pivots.py), stepped over the candle's period.
  function pivotTraces(c, period) {
    return PIVOT_LINES.map(function (line) {
      var x = [], y = [];
      c.forEach(function (candle) {
        var v = candle.pv ? candle.pv[line.key] : null;
        x.push(candle.t - period / 2, candle.t + period / 2);
        y.push(isNum(v) ? v : null, isNum(v) ? v : null);
      });
      return { type: "scatter", mode: "lines", name: line.key.toUpperCase(), x: x, y: y, connectgaps: false,
               line: { color: line.color, width: 1, dash: line.dash }, hoverinfo: "skip" };
    });
  }

  // On the 1 s chart the minute's floor pivots (from the previous minute) as labelled levels:
  // per-second pivots would only redraw the last candle's range.
  function levelTraces(c, pv) {
    return PIVOT_LINES.map(function (line) {
      var v = pv && c.length ? pv[line.key] : null;
      var x = isNum(v) ? [c[0].t, c[c.length - 1].t] : [], y = isNum(v) ? [v, v] : [];
      return { type: "scatter", mode: "lines+text", name: line.key.toUpperCase(), x: x, y: y,
               text: ["", line.key.toUpperCase() + " 1m"], textposition: "top left", textfont: { size: 9, color: line.color },
               line: { color: line.color, width: 1, dash: line.dash }, hovertemplate: line.key.toUpperCase() + " %{y:,.2f}<extra></extra>" };
    });
  }

  function fillTrace(fills, start) {
    var shown = fills.filter(function (f) { return f.ts >= start; });
    return {
      type: "scatter", mode: "markers", name: "fills", x: shown.map(function (f) { return f.ts; }),
      y: shown.map(function (f) { return f.price; }),
      text: shown.map(function (f) { return "fill " + f.side + " " + f.quantity + " @ " + f.price; }),
      hovertemplate: "%{text}<extra></extra>",
      marker: { symbol: "circle", size: 7, color: shown.map(function (f) { return f.side === "BUY" ? COLORS.buy : COLORS.sell; }),
                line: { color: "#f2f4f8", width: 1 } },
    };
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
  // Colour modes: "size" (Bookmap) is the resting size bid + ask in USD per bucket over its 99.5th
  // percentile in the window (linear, capped at 1): thin liquidity dark blue, walls yellow to white; "imbalance" is
  // (bid - ask) / (bid + ask) per bucket (+1 below the mid, -1 above it in an uncrossed book, except
  // in the mid's bucket); "depth" keeps the imbalance's sign, scaled by sqrt(depth / 95th percentile).
  function heatmap(div, state) {
    var frames = state.frames;
    if (!frames.length) {
      Plotly.react(div, [{ type: "heatmap", x: [], y: [], z: [[]], showscale: false }],
                   baseLayout(state, { annotations: waitingAnnotation("Waiting for order-book frames") }), plotConfig);
      state.heatRange = null;
      return;
    }
    var mode = state.heatmapMode || "size";
    var width = frames[frames.length - 1].width;
    var kMin = Infinity, kMax = -Infinity, usable = [];
    frames.forEach(function (f) {
      if (f.width !== width || !f.imbalance || !f.imbalance.length) return;
      var k0 = Math.round(f.first / width);
      usable.push({ f: f, k0: k0 });
      if (k0 < kMin) kMin = k0;
      if (k0 + f.imbalance.length - 1 > kMax) kMax = k0 + f.imbalance.length - 1;
    });
    var scale = mode === "depth" ? depthScale(usable, 0.95) : 0;
    var sizeScale = mode === "size" ? depthScale(usable, 0.995) : 0;  // only the biggest walls saturate
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
        var depth = (bid[i] || 0) + (ask[i] || 0), v;
        if (mode === "size") v = sizeScale ? Math.min(1, depth / sizeScale) : 0;
        else if (mode === "depth") v = scale ? Math.max(-1, Math.min(1, imb[i] * Math.sqrt(depth / scale))) : imb[i];
        else v = imb[i];
        z[offset + i][col] = v;
        info[offset + i][col] = [bid[i] || 0, ask[i] || 0, imb[i]];
      }
    });
    var size = mode === "size";
    state.heatRange = [kMin * width, (kMax + 1) * width];
    var traces = [
      {
        type: "heatmap", x: x, y: y, z: z, customdata: info, zmin: size ? 0 : -1, zmax: 1, zmid: size ? 0.5 : 0,
        hoverongaps: false, showscale: false, colorscale: size ? SIZE_SCALE : IMBALANCE_SCALE,
        hovertemplate: "%{x|%H:%M:%S} · %{y:,.2f}<br>bid $%{customdata[0]:,.0f} · ask $%{customdata[1]:,.0f}" +
                       "<br>imbalance %{customdata[2]:.2f}<extra></extra>",
      },
      {
        type: "scatter", mode: "lines", name: "mid", x: x, y: mid,
        line: { color: size ? "#ff4fd8" : "#f2f4f8", width: 1.4 }, hovertemplate: "mid %{y:,.2f}<extra></extra>",
      },
    ];
    Plotly.react(div, traces, baseLayout(state, {
      yaxis: { tickformat: ",.0f", range: state.heatRange }, hovermode: "closest",
    }), plotConfig);
  }

  // The newest frame's resting size per price (bids left in green, asks right in red), on the
  // heatmap's price axis: Bookmap's current-book column.
  function profile(div, state) {
    var f = state.frames.length ? state.frames[state.frames.length - 1] : null;
    var y = [], bid = [], ask = [];
    if (f && f.bid) {
      for (var i = 0; i < f.bid.length; i++) {
        y.push(f.first + (i + 0.5) * f.width);
        bid.push(-(f.bid[i] || 0));
        ask.push(f.ask[i] || 0);
      }
    }
    var bar = function (name, values, color) {
      return { type: "bar", orientation: "h", name: name, x: values, y: y, marker: { color: color },
               hovertemplate: name + " $%{customdata:,.0f} @ %{y:,.2f}<extra></extra>",
               customdata: values.map(Math.abs) };
    };
    Plotly.react(div, [bar("bid", bid, COLORS.buy), bar("ask", ask, COLORS.sell)], {
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#0e1420", barmode: "overlay", bargap: 0.05,
      font: { size: 10, color: COLORS.muted }, margin: { l: 4, r: 50, t: 6, b: 26 }, showlegend: false,
      xaxis: { fixedrange: true, gridcolor: COLORS.grid, zeroline: true, zerolinecolor: "#3a4860", tickformat: "~s" },
      yaxis: { side: "right", fixedrange: true, gridcolor: COLORS.grid, range: state.heatRange || undefined,
               tickformat: ",.0f" },
      annotations: f ? [] : waitingAnnotation("No book yet"),
    }, plotConfig);
  }

  // One equity line per account (USD), from the updates of this page.
  function equity(div, state) {
    var ids = Object.keys(state.equity || {});
    var traces = ids.map(function (id, n) {
      var points = state.equity[id];
      return { type: "scatter", mode: "lines", name: "Account " + id, x: points.map(function (p) { return p[0]; }),
               y: points.map(function (p) { return p[1]; }), line: { width: 1.5, color: ["#4f8cff", "#f0b429", "#e86bd1"][n % 3] },
               hovertemplate: "Account " + id + " %{y:,.2f} USD<extra></extra>" };
    });
    Plotly.react(div, traces, baseLayout(state, {
      margin: { l: 8, r: 64, t: 6, b: 24 }, yaxis: { tickformat: ",.0f", nticks: 4 },
      annotations: ids.length ? [] : waitingAnnotation("Equity appears with the session"),
    }), plotConfig);
  }

  // A percentile of non-empty bucket depth (USD) over the window: robust to a single huge wall.
  function depthScale(usable, quantile) {
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
    return depths[Math.floor((depths.length - 1) * quantile)];
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

  return { candles: candles, heatmap: heatmap, profile: profile, ma: ma, equity: equity, PERIOD_MS: PERIOD_MS };
})();
