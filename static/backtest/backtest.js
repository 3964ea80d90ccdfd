// Backtest detail page: equity vs buy-and-hold and drawdown (plotly, served locally); polls
// progress while the run is pending or running.
(function () {
  "use strict";
  const root = document.getElementById("backtest");
  const series = JSON.parse(document.getElementById("backtest-series").textContent || "{}");
  const ts = (series.ts || []).map((t) => new Date(t));
  const equity = series.equity || [];
  const mid = series.mid || [];
  const layout = { margin: { l: 60, r: 20, t: 10, b: 40 }, paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)", font: { color: "#c9d1d9" }, legend: { orientation: "h" } };
  if (ts.length && window.Plotly) {
    const fee = parseFloat(root.dataset.feeRate || "0");  // the run account's taker fee, as in the report
    const hold = mid.map((m) => equity[0] * (1 - fee) * m / mid[0]);
    Plotly.newPlot("chart-equity", [
      { x: ts, y: equity, name: "strategy", type: "scatter", mode: "lines" },
      { x: ts, y: hold, name: "buy-and-hold", type: "scatter", mode: "lines" },
    ], layout, { responsive: true, displaylogo: false });
    let peak = -Infinity;
    const dd = equity.map((e) => { peak = Math.max(peak, e); return peak > 0 ? -(peak - e) / peak : 0; });
    Plotly.newPlot("chart-drawdown", [{ x: ts, y: dd, name: "drawdown", type: "scatter", mode: "lines", fill: "tozeroy" }],
      layout, { responsive: true, displaylogo: false });
  }
  const foldsNode = document.getElementById("walk-forward-folds");
  if (foldsNode && window.Plotly) {  // walk-forward: PnL after fees per test window vs buy-and-hold (bps)
    const folds = JSON.parse(foldsNode.textContent || "[]");
    const x = folds.map((f) => "fold " + f.fold);
    Plotly.newPlot("chart-walk-forward", [
      { x: x, y: folds.map((f) => f.pnl_bps), name: "model signal", type: "bar" },
      { x: x, y: folds.map((f) => f.buy_and_hold_bps), name: "buy-and-hold", type: "bar" },
    ], layout, { responsive: true, displaylogo: false });
  }
  const status = root.dataset.status;
  if (status === "pending" || status === "running") {
    const timer = setInterval(async () => {
      const r = await fetch(root.dataset.progressUrl, { credentials: "same-origin" });
      if (!r.ok) return;
      const p = await r.json();
      document.getElementById("bt-status").textContent = p.status;
      document.getElementById("bt-progress").textContent = Math.round(p.progress * 100) + " %";
      if (p.status === "finished" || p.status === "failed") { clearInterval(timer); window.location.reload(); }
    }, 2000);
  }
})();
