/*
 * gogo annotation chart (window.gogo.annotateChart): candles on top, the COB heatmap below on the
 * same time axis, and every annotation drawn as a TradingView-style position box:
 *   - reward zone: entry price -> exit price over [entry, exit], green when the trade made money
 *     in its direction, red when it lost;
 *   - risk zone: entry price -> the worst adverse price the candles reached inside the trade
 *     (lowest low for a long, highest high for a short), translucent red;
 *   - a label at the exit with side, PnL % (before fees) and R:R = reward / risk.
 * Yours: blue outline; others': purple dashed outline with the owner's name.
 */
window.gogo = window.gogo || {};
window.gogo.annotateChart = (function () {
  "use strict";

  var COLORS = {
    buy: "#22b573", sell: "#ef5350", muted: "#8894a8", grid: "#1f2a3c", own: "#4f8cff", other: "#b48cff",
    profit: "rgba(34, 181, 115, 0.24)", loss: "rgba(239, 83, 80, 0.24)", risk: "rgba(239, 83, 80, 0.12)",
  };
  var plotConfig = { displayModeBar: false, responsive: true, scrollZoom: false, doubleClick: "reset" };

  /** PnL fraction in the trade's direction, the worst adverse price inside it and R:R (null if no risk). */
  function metrics(a, candles, tfMs) {
    var dir = a.side === "short" ? -1 : 1;
    var ret = dir * (a.exit_price / a.entry_price - 1);
    var worst = a.entry_price;
    for (var i = 0; i < candles.length; i++) {
      var c = candles[i];
      if (c.t + tfMs <= a.entry_time || c.t >= a.exit_time) continue;
      worst = dir > 0 ? Math.min(worst, c.l) : Math.max(worst, c.h);
    }
    var risk = Math.abs(worst - a.entry_price), reward = dir * (a.exit_price - a.entry_price);
    return { ret: ret, worst: worst, rr: risk > 0 ? reward / risk : null };
  }

  function label(a, m, mine) {
    var pct = (m.ret >= 0 ? "+" : "−") + Math.abs(m.ret * 100).toFixed(2) + "%";
    var rr = m.rr === null ? "R:R —" : "R:R " + m.rr.toFixed(2);
    return (mine ? "" : a.owner_name + " · ") + a.side.toUpperCase() + " " + pct + " · " + rr;
  }

  function positionShapes(a, m, opts) {
    var edge = opts.mine ? COLORS.own : COLORS.other;
    var width = opts.selected ? 2.5 : 1.2, dash = opts.mine ? "solid" : "dash";
    var shapes = [
      { type: "rect", xref: "x", yref: "y", x0: a.entry_time, x1: a.exit_time, y0: a.entry_price,
        y1: a.exit_price, fillcolor: m.ret >= 0 ? COLORS.profit : COLORS.loss, line: { color: edge, width: width, dash: dash },
        layer: "above" },
      { type: "line", xref: "x", yref: "y", x0: a.entry_time, x1: a.exit_time, y0: a.entry_price, y1: a.entry_price,
        line: { color: edge, width: width + 0.5, dash: dash } },
    ];
    if (m.worst !== a.entry_price) {
      shapes.push({ type: "rect", xref: "x", yref: "y", x0: a.entry_time, x1: a.exit_time, y0: a.entry_price,
                    y1: m.worst, fillcolor: COLORS.risk, line: { width: 0 }, layer: "above" });
    }
    return shapes;
  }

  // Colour = imbalance scaled by sqrt(depth / 95th percentile depth), as the dashboard's heatmap.
  function heatmapTrace(h) {
    var depths = [];
    h.volume.forEach(function (row) { row.forEach(function (v) { if (v) depths.push(v); }); });
    depths.sort(function (a, b) { return a - b; });
    var scale = depths.length ? depths[Math.floor((depths.length - 1) * 0.95)] : 0;
    var z = h.imbalance.map(function (row, r) {
      return row.map(function (imb, c) {
        if (imb === null) return null;
        var vol = h.volume[r][c] || 0;
        return scale ? Math.max(-1, Math.min(1, imb * Math.sqrt(vol / scale))) : imb;
      });
    });
    // Plotly's heatmap wants z[row = price][col = time]: transpose the (T, B) matrices.
    var zt = h.price.map(function (_, c) { return z.map(function (row) { return row[c]; }); });
    var info = h.price.map(function (_, c) {
      return h.imbalance.map(function (row, r) { return [row[c], h.volume[r][c]]; });
    });
    return {
      type: "heatmap", name: "order book", xaxis: "x", yaxis: "y2", x: h.ts,
      y: h.price.map(function (p) { return p + h.bucket_width / 2; }), z: zt, customdata: info,
      zmin: -1, zmax: 1, zmid: 0, showscale: false, hoverongaps: false,
      colorscale: [[0, "#ff5a4f"], [0.25, "#a3302f"], [0.5, "#121926"], [0.75, "#157a4f"], [1, "#2be28b"]],
      hovertemplate: "%{x|%H:%M:%S} · %{y:,.2f}<br>imbalance %{customdata[0]:.2f} · depth $%{customdata[1]:,.0f}<extra></extra>",
    };
  }

  /** Draw everything. ``view`` = {candles, heatmap, tfMs, symbol, items: [{a, mine, selected}], range: [ms, ms]}. */
  function draw(div, view) {
    var c = view.candles;
    var traces = [{
      type: "candlestick", name: view.symbol, xaxis: "x", yaxis: "y",
      x: c.map(function (k) { return k.t; }), open: c.map(function (k) { return k.o; }),
      high: c.map(function (k) { return k.h; }), low: c.map(function (k) { return k.l; }),
      close: c.map(function (k) { return k.c; }),
      increasing: { line: { color: COLORS.buy, width: 1 }, fillcolor: COLORS.buy },
      decreasing: { line: { color: COLORS.sell, width: 1 }, fillcolor: COLORS.sell },
      whiskerwidth: 0, hoverlabel: { bgcolor: "#182132" },
    }];
    var h = view.heatmap;
    if (h && h.ts.length) {
      traces.push(heatmapTrace(h));
      traces.push({ type: "scatter", mode: "lines", name: "mid", xaxis: "x", yaxis: "y2", x: h.ts, y: h.mid,
                    line: { color: "#f2f4f8", width: 1 }, hovertemplate: "mid %{y:,.2f}<extra></extra>" });
    } else {
      traces.push({ type: "heatmap", name: "order book", xaxis: "x", yaxis: "y2", x: [], y: [], z: [[]], showscale: false });
    }
    var shapes = [], labels = [];
    view.items.forEach(function (item) {
      var m = metrics(item.a, c, view.tfMs);
      shapes = shapes.concat(positionShapes(item.a, m, item));
      labels.push({
        x: item.a.exit_time, y: item.a.exit_price, xref: "x", yref: "y", text: label(item.a, m, item.mine),
        showarrow: false, xanchor: "right", yanchor: m.ret >= 0 === (item.a.side !== "short") ? "bottom" : "top",
        font: { size: 11, color: item.mine ? "#dce3ee" : COLORS.other }, bgcolor: "rgba(11, 15, 23, 0.75)",
      });
    });
    if (!c.length) {
      labels.push({ text: "No candles in this range", xref: "paper", yref: "paper", x: 0.5, y: 0.75,
                    showarrow: false, font: { size: 13, color: COLORS.muted } });
    }
    var narrow = div.clientWidth < 600;
    var layout = {
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#0e1420", showlegend: false, hovermode: "x",
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11, color: COLORS.muted },
      margin: { l: 8, r: narrow ? 52 : 64, t: 8, b: 26 }, dragmode: "zoom",
      xaxis: { type: "date", anchor: "y2", range: view.range, gridcolor: COLORS.grid, linecolor: COLORS.grid,
               zeroline: false, rangeslider: { visible: false }, hoverformat: "%Y-%m-%d %H:%M:%S" },
      yaxis: { domain: [0.34, 1], side: "right", gridcolor: COLORS.grid, zeroline: false, tickformat: ",.2f" },
      yaxis2: { domain: [0, 0.3], side: "right", gridcolor: COLORS.grid, zeroline: false, tickformat: ",.0f" },
      shapes: shapes, annotations: labels, uirevision: view.uirevision,
    };
    return Plotly.react(div, traces, layout, plotConfig);
  }

  return { draw: draw, metrics: metrics, label: label, COLORS: COLORS };
})();
