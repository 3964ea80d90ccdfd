"""The look-ahead check over backtests: one full run, then ``samples`` runs with the data truncated
at random seconds t; any decision at a second <= t that differs is a look-ahead (the pipeline used
data from after the second it decided on). See ``ml.backtest.lookahead``."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from apps.backtest.models import BacktestRun
from apps.backtest.services import InputHook, backtest_run
from apps.market.convert import datetime_to_ms, ms_to_datetime
from apps.trading.models import Decision
from ml.backtest.lookahead import DIGITS, cut_points, decision_changes

logger = logging.getLogger(__name__)


def decision_log(*, run: BacktestRun) -> dict[int, tuple]:
    """{second ms: (action, confidence, P(BUY), P(SELL), P(HOLD) of the mixture), rounded to DIGITS}
    of the run's own account."""
    rows = Decision.objects.filter(account_id=run.account_id).order_by("ts_event").values_list(
        "ts_event", "action", "confidence", "inputs")
    log = {}
    for ts, action, conf, inputs in rows:
        mixture = inputs.get("mixture", {})
        log[datetime_to_ms(ts)] = (action, round(conf, DIGITS),
                                   *(round(mixture[a], DIGITS) if a in mixture else None for a in ("BUY", "SELL", "HOLD")))
    return log


def lookahead_check(*, samples: int = 5, seed: int = 0, start: datetime | None = None, end: datetime | None = None,
                    params: dict | None = None, input_hook: InputHook | None = None,
                    progress: Callable[[str], None] | None = None) -> dict:
    """Run the check; returns {"runs": [full run id, ...], "cuts": [{"cut_ms", "run", "compared",
    "changes": [...]}], "changed_decisions": total, "passed": bool}.

    ``input_hook`` goes to every run (tests: a deliberately leaky feature). Raises what backtest_run raises."""
    full = backtest_run(start=start, end=end, params=params, input_hook=input_hook)
    reference = decision_log(run=full)
    result = {"runs": [full.pk], "cuts": [], "changed_decisions": 0, "decisions": len(reference)}
    for cut in cut_points(list(reference), samples, seed):
        if progress is not None:
            progress(f"truncated at {ms_to_datetime(cut).isoformat()}")
        run = backtest_run(start=start, end=ms_to_datetime(cut), params=params, input_hook=input_hook)
        changes = decision_changes(reference, decision_log(run=run), cut)
        result["runs"].append(run.pk)
        result["cuts"].append({"cut_ms": cut, "run": run.pk, "compared": sum(1 for k in reference if k <= cut),
                               "changes": changes})
        result["changed_decisions"] += len(changes)
        if changes:
            logger.warning("look-ahead: %d decision(s) changed when the data ends at %d", len(changes), cut)
    result["passed"] = result["changed_decisions"] == 0
    return result
