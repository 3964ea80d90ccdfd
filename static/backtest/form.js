// Backtest start form: the walk-forward fields show only for that source (CSS on data-source) and
// are disabled otherwise, so a hidden value is not submitted.
(function () {
  "use strict";
  const form = document.getElementById("bt-form");
  if (!form) return;
  const source = form.querySelector("select[name=source]");
  const sync = () => {
    form.dataset.source = source.value;
    form.querySelectorAll(".bt-form__field--wf input, .bt-form__field--wf select").forEach((el) => {
      el.disabled = source.value !== "walk_forward";
    });
  };
  source.addEventListener("change", sync);
  sync();
})();
