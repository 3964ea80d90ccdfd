// Comparison page: the server-built plotly figure (apps.backtest.reports_figures.comparison_figure).
(function () {
  "use strict";
  const node = document.getElementById("compare-figure");
  const figure = node ? JSON.parse(node.textContent || "null") : null;
  if (!figure || !window.Plotly || !document.getElementById("chart-compare")) return;
  Plotly.newPlot("chart-compare", figure.data, figure.layout, { responsive: true, displaylogo: false });
})();
