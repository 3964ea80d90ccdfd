// Backtest start form: the walk-forward fields show only for that source (CSS on data-source).
(function () {
  "use strict";
  const form = document.getElementById("bt-form");
  if (!form) return;
  const source = form.querySelector("select[name=source]");
  const sync = () => { form.dataset.source = source.value; };
  source.addEventListener("change", sync);
  sync();
})();
