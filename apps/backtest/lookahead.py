"""The look-ahead check over backtests and training sets (``ml.backtest.lookahead`` for the rule
and the comparisons). Three kinds of leak, each checked at cut points spread over the whole span:

- ``stream``: the replayed stream cut at second t. The model inputs of every second <= t
  (``apps.backtest.lookahead_inputs.input_replay``) and the backtest's decisions must equal those
  of the full run.
- ``candle_store``: (a) every stored candle closing after the end of t altered (rolled back after,
  ``candle_store_altered_after``); the inputs and decisions of every second <= t must not change.
  (b) Structural, at every second of the reference replay: the rings the inputs are cut from hold
  no candle closing after the end of that second (``ml.backtest.lookahead.ring_leaks``).
- ``training_window``: the training sets built from candle history (the live model families'
  ``ml.features.groups.history_samples`` and ``ml.training.dataset.make_dataset``) rebuilt from
  the history as known at times T over its whole span (``ml.backtest.lookahead_training``).

A decision at second s is (action, confidence, P(BUY), P(SELL), P(HOLD) of the mixture), rounded
to ``DIGITS``: any model that reads a changed input moves the probabilities.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime

from django.conf import settings

from apps.backtest.lookahead_inputs import candle_store_altered_after, input_replay
from apps.backtest.models import BacktestRun
from apps.backtest.services import InputHook, backtest_run
from apps.market.convert import datetime_to_ms, ms_to_datetime
from apps.trading.models import Decision
from ml.backtest.lookahead import (
    CANDLE_STORE,
    DIGITS,
    KINDS,
    STREAM,
    TRAINING_WINDOW,
    InputLog,
    Leak,
    cut_points,
    decision_changes,
    decision_leaks,
    input_leaks,
    summarize,
)
from ml.features.base_input import CANDLE_COMPONENTS

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


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


def _replay_leaks(kind: str, cut_ms: int, reference: InputLog, *, end_ms: int | None, params: dict | None,
                  input_hook: InputHook | None) -> tuple[list[Leak], int]:
    """Leaks of ``kind`` in the inputs of the seconds <= ``cut_ms`` of one replay, and the number
    of seconds compared."""
    leaks, compared = [], 0
    for ts, inputs, _ in input_replay(end_ms=end_ms, params=params, input_hook=input_hook):
        if ts > cut_ms:
            break
        compared += 1
        leaks.extend(input_leaks(kind, cut_ms, ts, reference.differences(ts, inputs.components, inputs.present)))
    return leaks, compared


def _stream_cut(cut_ms: int, reference: InputLog, full: dict, *, start: datetime | None, params: dict | None,
                input_hook: InputHook | None, decisions: bool) -> tuple[dict, list[Leak]]:
    """The stream cut at ``cut_ms``: a replay and (``decisions``) a backtest, both ending there."""
    leaks, compared = _replay_leaks(STREAM, cut_ms, reference, end_ms=cut_ms, params=params, input_hook=input_hook)
    cut = {"kind": STREAM, "cut_ms": cut_ms, "compared_seconds": compared}
    if decisions:
        run = backtest_run(start=start, end=ms_to_datetime(cut_ms), params=params, input_hook=input_hook)
        leaks += decision_leaks(STREAM, cut_ms, decision_changes(full, decision_log(run=run), cut_ms))
        cut.update(run=run.pk, compared_decisions=sum(1 for k in full if k <= cut_ms))
    return cut, leaks


def _store_cut(cut_ms: int, reference: InputLog, full: dict, *, start: datetime | None, end: datetime | None,
               params: dict | None, input_hook: InputHook | None, decisions: bool) -> tuple[dict, list[Leak]]:
    """The candle-store cut at ``cut_ms``: the same stream, the store altered after the cut (rolled
    back, with the backtest's rows)."""
    from apps.market.models import Instrument

    end_ms = datetime_to_ms(end) if end else None
    instruments = list(Instrument.objects.all())
    with candle_store_altered_after(cut_ms=cut_ms, instruments=instruments) as altered:
        leaks, compared = _replay_leaks(CANDLE_STORE, cut_ms, reference, end_ms=end_ms, params=params,
                                        input_hook=input_hook)
        cut = {"kind": CANDLE_STORE, "cut_ms": cut_ms, "compared_seconds": compared, "altered_candles": altered}
        if decisions:
            run = backtest_run(start=start, end=end, params=params, input_hook=input_hook)
            leaks += decision_leaks(CANDLE_STORE, cut_ms, decision_changes(full, decision_log(run=run), cut_ms))
            cut["compared_decisions"] = sum(1 for k in full if k <= cut_ms)
    return cut, leaks


def _reference(*, start_ms: int | None, end_ms: int | None, params: dict | None,
               input_hook: InputHook | None) -> tuple[InputLog, list[int], list[Leak]]:
    """The full replay: its inputs (candle components kept, the COB by digest), the seconds in
    [start, end], and the structural leaks of every second."""
    log, seconds, leaks = InputLog(keep=CANDLE_COMPONENTS), [], []
    for ts, inputs, structural in input_replay(end_ms=end_ms, params=params, input_hook=input_hook):
        log.record(ts, inputs.components, inputs.present)
        leaks.extend(structural)
        if start_ms is None or ts >= start_ms:
            seconds.append(ts)
    return log, seconds, leaks


MARKET_SAMPLES_STRIDE_MIN = 60  # every hour of the ~175k minutes of history: ~3k samples per build


def default_training_builders() -> dict[str, tuple]:
    """name -> (builder, history) of the training sets built from candle history: "market_samples"
    (``ml.features.groups.history_samples``, what the live model families train on, every
    MARKET_SAMPLES_STRIDE_MIN minutes of all the ETHUSDT 1m/1h/1d and BTCUSDT 1m history in
    GOGO_DATA_DIR) and "candle_dataset" (``ml.training.dataset.make_dataset`` over the 1m/1h/1d
    training history files). Raises FileNotFoundError / ValueError for missing or bad history."""
    from ml.backtest.lookahead_training import candle_dataset_builder, sample_set_builder
    from ml.data.history import load_history
    from ml.training.cnn_train import default_training_history

    primary, _ = load_history(settings.GOGO_DATA_DIR, "ETHUSDT")
    reference, _ = load_history(settings.GOGO_DATA_DIR, "BTCUSDT", timeframes=("1m",))
    market_history = {**primary, **{f"BTCUSDT/{tf}": frame for tf, frame in reference.items()}}
    return {
        "market_samples": (sample_set_builder(start_ms=0, end_ms=2**62, stride_min=MARKET_SAMPLES_STRIDE_MIN),
                           market_history),
        "candle_dataset": (candle_dataset_builder(start_ms=0, end_ms=2**62),
                           default_training_history(settings.GOGO_DATA_DIR)),
    }


def training_window_report(*, samples: int = 6, seed: int = 0, builders: dict[str, tuple] | None = None
                           ) -> tuple[dict, list[Leak]]:
    """``ml.backtest.lookahead_training.training_window_check`` of each (builder, history) in
    ``builders`` (default :func:`default_training_builders`). Returns ({name: {"samples", "span_ms",
    "cuts"}}, leaks with the component named "<name>/<feature or label>")."""
    from ml.backtest.lookahead_training import training_window_check

    report, leaks = {}, []
    for name, (build, history) in (builders or default_training_builders()).items():
        result = training_window_check(build, history, samples=samples, seed=seed)
        leaks += [dataclasses.replace(leak, component=f"{name}/{leak.component}") for leak in result.pop("leaks")]
        report[name] = result
    return report, leaks


def lookahead_check(*, samples: int = 8, seed: int = 0, start: datetime | None = None, end: datetime | None = None,
                    params: dict | None = None, input_hook: InputHook | None = None, kinds: tuple[str, ...] = KINDS,
                    decisions: bool = True, training_samples: int = 6, training_builders: dict | None = None,
                    progress: Progress | None = None) -> dict:
    """Run the check (module docstring) at ``samples`` stratified, seeded cut seconds over the whole
    replayed span [start, end] (``ml.backtest.lookahead.cut_points``) for the stream and candle-store
    kinds, and ``training_samples`` cut times for the training window. ``decisions=False`` compares
    the inputs only (no backtests). ``input_hook`` and ``training_builders`` (name -> (builder,
    history), default :func:`default_training_builders`) are for tests (a deliberately leaky
    feature or builder).

    Returns {"leaks": [Leak as dict, ...], "leak_count", "by_kind": kind -> component -> count,
    "passed", "seconds": seconds in the span, "decisions": decisions of the full run, "runs": [full
    run id, ...], "cuts": [{"kind", "cut_ms", "compared_seconds", "compared_decisions", ...}],
    "training_window": {builder name: {"samples", "span_ms", "cuts"}}}.

    Raises ValueError for an unknown kind or samples < 1, and what backtest_run raises."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"kinds: unknown {sorted(unknown)}; expected some of {list(KINDS)}")
    if samples < 1 or training_samples < 1:
        raise ValueError("samples and training_samples must be >= 1")
    say = progress or (lambda message: None)
    leaks: list[Leak] = []
    result: dict = {"cuts": [], "runs": [], "seconds": 0, "decisions": 0}
    if STREAM in kinds or CANDLE_STORE in kinds:
        start_ms, end_ms = (datetime_to_ms(start) if start else None), (datetime_to_ms(end) if end else None)
        say("reference replay")
        reference, seconds, structural = _reference(start_ms=start_ms, end_ms=end_ms, params=params,
                                                    input_hook=input_hook)
        if CANDLE_STORE in kinds:
            leaks += structural
        full = {}
        if decisions:
            say("reference backtest")
            run = backtest_run(start=start, end=end, params=params, input_hook=input_hook)
            full = decision_log(run=run)
            result["runs"].append(run.pk)
        result.update(seconds=len(seconds), decisions=len(full))
        for cut_ms in cut_points(seconds, samples, seed):
            for kind in (k for k in (STREAM, CANDLE_STORE) if k in kinds):
                say(f"{kind} cut at {ms_to_datetime(cut_ms).isoformat()}")
                if kind == STREAM:
                    cut, found = _stream_cut(cut_ms, reference, full, start=start, params=params,
                                             input_hook=input_hook, decisions=decisions)
                else:
                    cut, found = _store_cut(cut_ms, reference, full, start=start, end=end, params=params,
                                            input_hook=input_hook, decisions=decisions)
                cut["leaks"] = len(found)
                result["cuts"].append(cut)
                result["runs"] += [cut["run"]] if "run" in cut else []
                leaks += found
    if TRAINING_WINDOW in kinds:
        say("training window")
        result["training_window"], found = training_window_report(samples=training_samples, seed=seed,
                                                                  builders=training_builders)
        leaks += found
    for leak in leaks:
        logger.warning("look-ahead (%s) in %s at %d, cut %d: %s", leak.kind, leak.component, leak.ts, leak.cut_ms,
                       leak.detail)
    result.update(leaks=[leak.as_dict() for leak in leaks], leak_count=len(leaks), by_kind=summarize(leaks),
                  passed=not leaks)
    return result
