// Progress of a pending or running backtest: polls the run's progress endpoint every second, moves
// the bar, and reloads the page once the run is finished or failed (the report is then on it).
(function () {
  "use strict";
  const root = document.getElementById("bt-progress");
  if (!root || !["pending", "running"].includes(root.dataset.status)) return;
  const bar = document.getElementById("bt-progress-bar");
  const text = document.getElementById("bt-progress-text");
  const status = document.getElementById("bt-status");
  const timer = setInterval(async () => {
    let p;
    try {
      const r = await fetch(root.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!r.ok) return;
      p = await r.json();
    } catch (e) { return; }  // a dropped poll: the next one tries again
    status.textContent = p.status;
    if (bar) bar.value = p.progress;
    text.textContent = Math.round(p.progress * 100) + " %" + (p.detail ? " · " + p.detail : "");
    if (p.status === "finished" || p.status === "failed") { clearInterval(timer); window.location.reload(); }
  }, 1000);
})();
