// Replay backtest page: equity vs buy-and-hold (USD, left axis) with the mid price and the filled
// orders as BUY / SELL markers (right axis; legend under the chart), and the drawdown in % of the
// peak with bps on hover. Plotly is served locally (static/vendor/plotly).
(function () {
  "use strict";
  const root = document.getElementById("backtest");
  const series = JSON.parse(document.getElementById("backtest-series").textContent || "{}");
  const markers = JSON.parse(document.getElementById("backtest-markers").textContent || "[]");
  const ts = (series.ts || []).map((t) => new Date(t));
  const equity = series.equity || [];
  const mid = series.mid || [];
  if (!ts.length || !window.Plotly) return;
  const layout = {
    margin: { l: 70, r: 70, t: 10, b: 40 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { color: "#c9d1d9" }, legend: { orientation: "h" }, separators: ".,",
    yaxis: { title: { text: "equity (USD)" }, tickformat: ",.2f", gridcolor: "#243045" },
    xaxis: { gridcolor: "#243045" },
  };
  const config = { responsive: true, displaylogo: false };
  const fee = parseFloat(root.dataset.feeRate || "0");  // the run account's taker fee, as in the report
  const hold = mid.map((m) => equity[0] * (1 - fee) * m / mid[0]);
  const side = (s) => markers.filter((m) => m.side === s);
  const marker = (s, symbol, color) => ({
    x: side(s).map((m) => new Date(m.ts)), y: side(s).map((m) => m.price), yaxis: "y2", name: s + " filled",
    type: "scatter", mode: "markers", marker: { symbol: symbol, size: 11, color: color },
    customdata: side(s).map((m) => m.purpose), hovertemplate: s + " %{customdata} at %{y:,.2f}<extra></extra>",
  });
  Plotly.newPlot("chart-equity", [
    { x: ts, y: equity, name: "strategy equity", type: "scatter", mode: "lines", line: { color: "#4f8cff", width: 2 },
      hovertemplate: "%{y:,.2f} USD" },
    { x: ts, y: hold, name: "buy-and-hold equity", type: "scatter", mode: "lines", line: { color: "#f0a050" },
      hovertemplate: "%{y:,.2f} USD" },
    { x: ts, y: mid, name: "mid price", yaxis: "y2", type: "scatter", mode: "lines",
      line: { width: 1, color: "#8894a8", dash: "dot" }, hovertemplate: "%{y:,.2f}" },
    marker("BUY", "triangle-up", "#22b573"), marker("SELL", "triangle-down", "#ef5350"),
  ], Object.assign({}, layout, {
    yaxis2: { title: { text: "price (USD)" }, overlaying: "y", side: "right", tickformat: ",.2f", showgrid: false },
  }), config);
  let peak = -Infinity;
  const dd = equity.map((e) => { peak = Math.max(peak, e); return peak > 0 ? (peak - e) / peak : 0; });
  Plotly.newPlot("chart-drawdown", [{
    x: ts, y: dd.map((d) => -d * 100), customdata: dd.map((d) => d * 10000), name: "drawdown", type: "scatter",
    mode: "lines", fill: "tozeroy", hovertemplate: "%{y:.3f} % (−%{customdata:,.1f} bps)<extra></extra>",
  }], Object.assign({}, layout, { yaxis: { title: { text: "drawdown (%)" }, ticksuffix: " %", gridcolor: "#243045" } }),
  config);
})();
