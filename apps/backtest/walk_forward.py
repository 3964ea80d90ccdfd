"""Walk-forward runs: ``ml.evaluation.walk_forward`` over the candle history (GOGO_DATA_DIR), stored
on a BacktestRun (source ``walk_forward``). One engine serves the command, the page and the API.

``params`` (all optional, bounded): ``folds`` (1..12, default 3), ``model`` ("all", the default,
trains the cascade cnn -> transformer -> dqn; or one family), ``epochs`` (1..20, default 6, with
early stopping), ``window_days`` (0.25..30, default 1: the span when the run has no start), ``scheme``
("expanding" | "rolling"), ``margin_bps`` (-50..100, default 2), ``trade_horizon_min`` (1, 5, 15 or
60, default 60), ``seed``, ``search_trials`` (0..50: run an Optuna search of that many trials instead,
store every trial and save the best configuration as the preset), ``preset`` ("best": start from the
saved preset). The span is ``[start, end)`` of the run, else the ``folds + 1`` windows of
``window_days`` that end with the newest 1m candle of the data directory.

Every finished walk-forward counts as one configuration tried on its span: the deflated Sharpe ratio
of a run is computed over the runs (and hyper-parameter trials) already stored for the same span.

Stored: ``summary["walk_forward"]`` (the report of docs/evaluation.md) and ``summary["sha256"]``, the
hash of the per-fold trading figures (training is seeded: two runs on the same span give the same hash).
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from apps.backtest.models import BacktestRun
from apps.market.convert import datetime_to_ms

logger = logging.getLogger(__name__)

DEFAULTS = {"folds": 3, "model": "all", "epochs": 6, "window_days": 1.0, "scheme": "expanding",
            "margin_bps": 2.0, "trade_horizon_min": 60, "seed": 0, "search_trials": 0, "preset": ""}
BOUNDS = {"folds": (1, 12), "epochs": (1, 20), "window_days": (0.25, 30.0), "margin_bps": (-50.0, 100.0),
          "seed": (0, 2**31 - 1), "search_trials": (0, 50)}
PRESET_FIELDS = ("margin_bps", "trade_horizon_min", "epochs", "scheme")
MODELS = ("all", "cnn", "transformer", "dqn")
HASHED = ("trades", "net_pnl_bps", "log_loss")


def walk_forward_params(params: dict) -> dict:
    """The run's walk-forward parameters with defaults (module docstring).

    Raises:
        ValueError: naming the field, for a value out of its bounds or of the wrong type.
    """
    given = {k: v for k, v in params.items() if k in DEFAULTS and v not in (None, "")}
    preset = {}
    if given.get("preset"):
        if given["preset"] != "best":
            raise ValueError(f"preset: only 'best' (the last search's best configuration), got {given['preset']!r}")
        preset = preset_load()
    out = {**DEFAULTS, **preset, **given}
    try:
        for key in ("folds", "epochs", "trade_horizon_min", "seed", "search_trials"):
            out[key] = int(out[key])
        for key in ("window_days", "margin_bps"):
            out[key] = float(out[key])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"folds, epochs, window_days, margin_bps, trade_horizon_min, seed: not numbers ({exc})") from exc
    for key, (lo, hi) in BOUNDS.items():
        if not lo <= out[key] <= hi:
            raise ValueError(f"{key}: must be in {lo}..{hi}, got {out[key]}")
    if out["model"] not in MODELS:
        raise ValueError(f"model: one of {', '.join(MODELS)}, got {out['model']!r}")
    if out["scheme"] not in ("expanding", "rolling"):
        raise ValueError(f"scheme: expanding or rolling, got {out['scheme']!r}")
    if out["trade_horizon_min"] not in (1, 5, 15, 60):
        raise ValueError(f"trade_horizon_min: one of 1, 5, 15, 60, got {out['trade_horizon_min']}")
    return out


def preset_path():
    """Where the best configuration of the last hyper-parameter search is kept (a training preset)."""
    return settings.GOGO_VAR_DIR / "presets" / "walk_forward.json"


def preset_load() -> dict:
    """The saved preset's fields (PRESET_FIELDS). Raises ValueError when no search has saved one."""
    path = preset_path()
    if not path.is_file():
        raise ValueError(f"preset: no search has saved a best configuration yet ({path}); run "
                         "`manage.py backtest --walk-forward K --search N` first")
    data = json.loads(path.read_text())
    return {k: data[k] for k in PRESET_FIELDS if k in data}


def load_candle_history() -> tuple[dict, dict, dict]:
    """ETHUSDT 1m/1h/1d and BTCUSDT 1m frames from every file of GOGO_DATA_DIR, and the coverage
    report. Raises FileNotFoundError when the data directory has no ETHUSDT 1m file."""
    from ml.data.history import load_history

    eth, report = load_history(settings.GOGO_DATA_DIR, "ETHUSDT")
    if "1m" not in eth:
        raise FileNotFoundError(f"no binance_spot_ETHUSDT_1m_*.csv[.gz] in {settings.GOGO_DATA_DIR}/ohlcv")
    btc, btc_report = load_history(settings.GOGO_DATA_DIR, "BTCUSDT", ("1m",))
    return eth, btc, {"ETHUSDT": report, "BTCUSDT": btc_report}


def trials_on_span(start_ms: int, end_ms: int) -> int:
    """Configurations already evaluated on exactly this span: finished walk-forward runs plus stored
    hyper-parameter trials (``summary["walk_forward"]["params"]`` start/end in ms)."""
    n = 0
    for summary in BacktestRun.objects.filter(source=BacktestRun.Source.WALK_FORWARD,
                                              status=BacktestRun.Status.FINISHED).values_list("summary", flat=True):
        p = ((summary or {}).get("walk_forward") or {}).get("params") or {}
        if p.get("start_ms") == start_ms and p.get("end_ms") == end_ms:
            n += int((summary or {}).get("search_trials") or 0) or 1
    return n


def live_checkpoints() -> tuple[dict, dict] | None:
    """The live checkpoints as the walk-forward's ``live`` baseline: (name -> (model, calibration,
    upstream names), name -> (data start ms, data end ms)); None when no live checkpoint loads.
    Never trains."""
    from apps.predictions.models import ModelCheckpoint
    from apps.predictions.services import model_load_live
    from ml.models.live import serving_of

    models, ranges = {}, {}
    for name in ModelCheckpoint.objects.filter(is_active=True).values_list("model_name", flat=True).distinct():
        try:
            model, checkpoint = model_load_live(model_name=name, train_if_missing=False)
            serving = serving_of(model)
        except (LookupError, ValueError) as exc:
            logger.warning("walk-forward: live %s checkpoint not usable as a baseline: %s", name, exc)
            continue
        models[name] = (model, serving.calibration, serving.upstream)
        lo = datetime_to_ms(checkpoint.data_start) if checkpoint.data_start else 0
        hi = datetime_to_ms(checkpoint.data_end) if checkpoint.data_end else 2**62
        ranges[name] = (lo, hi)
    if any(u not in models for _, _, ups in models.values() for u in ups):
        logger.warning("walk-forward: the live cascade is incomplete (%s); no live baseline", sorted(models))
        return None
    return (models, ranges) if models else None


def walk_forward_execute(run: BacktestRun, progress: Callable[[float, str], None] | None = None) -> None:
    """Run the walk-forward of ``run`` (module docstring) and store it FINISHED.

    Raises:
        ValueError: bad parameters or a span without samples. FileNotFoundError: missing history.
    """
    from ml.evaluation.costs import CostModel
    from ml.evaluation.walk_forward import CASCADE, WalkForwardParams, redeflate, run_walk_forward

    p = walk_forward_params(run.params)
    eth, btc, coverage = load_candle_history()
    newest = int(eth["1m"]["open_time"].iloc[-1]) + 60_000
    end_ms = datetime_to_ms(run.end) if run.end else newest
    start_ms = datetime_to_ms(run.start) if run.start else end_ms - int((p["folds"] + 1) * p["window_days"] * 86_400_000)
    costs = CostModel(spread_bps=settings.GOGO_EVAL_SPREAD_BPS)
    params = WalkForwardParams(
        start_ms=start_ms, end_ms=end_ms, folds=p["folds"], scheme=p["scheme"], epochs=p["epochs"],
        models=CASCADE if p["model"] == "all" else (p["model"],), margin_bps=p["margin_bps"],
        trade_horizon_min=p["trade_horizon_min"], seed=p["seed"], costs=costs,
        trials=1 + trials_on_span(start_ms, end_ms))

    def report(fraction: float, message: str) -> None:
        BacktestRun.objects.filter(pk=run.pk).update(progress=min(1.0, max(0.0, fraction)), progress_detail=message[:255])
        if progress is not None:
            progress(fraction, message)

    search = None
    if p["search_trials"]:
        from ml.evaluation.search import search as optuna_search

        search = optuna_search(eth, btc, params, n_trials=p["search_trials"], seed=p["seed"], progress=report,
                               live=live_checkpoints())
        result = search.pop("best_report")
        path = preset_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(search["preset"], indent=1, default=str))
        redeflate(result, trials_on_span(start_ms, end_ms) + search["n_trials"])
    else:
        result = run_walk_forward(eth, btc, params, progress=report, live=live_checkpoints())
    result["params"].update(start_ms=start_ms, end_ms=end_ms, request=p)
    result["coverage"] = coverage
    hashed = [{name: {k: perf.get(k) for k in HASHED}
               for name, perf in {**f["models"], "orchestrator": f["orchestrator"]}.items()} for f in result["folds"]]
    run.summary = {"walk_forward": result, "path": "walk_forward",
                   "sha256": hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()}
    if search is not None:
        run.summary.update(search=search, search_trials=search["n_trials"])
    run.series = {}
    run.status, run.progress, run.finished_at = BacktestRun.Status.FINISHED, 1.0, timezone.now()
    run.save()
    o = result["total"]["orchestrator"]
    logger.info("walk-forward %s finished: orchestrator %s trades, %s bps", run.pk, o["trades"], o["net_pnl_bps"])


FOLD_COLUMNS = ("fold", "start", "end", "days", "who", "trades", "net_pnl_bps", "net_pnl_bps_per_day",
                "net_edge_mean", "net_edge_lo", "net_edge_hi", "hit_rate", "log_loss", "prior_log_loss",
                "max_drawdown_bps", "fees_bps", "spread_bps", "slippage_bps")


def walk_forward_rows(run: BacktestRun) -> list[dict]:
    """One row per fold and per model / orchestrator / baseline (``FOLD_COLUMNS``), for exports."""
    rows = []
    for f in ((run.summary or {}).get("walk_forward") or {}).get("folds", []):
        entries = {**(f.get("models") or {}), "orchestrator": f.get("orchestrator") or {},
                   **{f"baseline:{k}": v for k, v in (f.get("baselines") or {}).items()}}
        for who, perf in entries.items():
            if not isinstance(perf, dict) or "error" in perf:
                continue
            edge = perf.get("net_edge_bps_per_trade") or {}
            costs = perf.get("costs_bps") or {}
            rows.append({"fold": f.get("fold"), "start": f.get("start"), "end": f.get("end"), "days": f.get("days"),
                         "who": who, "trades": perf.get("trades"), "net_pnl_bps": perf.get("net_pnl_bps"),
                         "net_pnl_bps_per_day": perf.get("net_pnl_bps_per_day"), "net_edge_mean": edge.get("mean"),
                         "net_edge_lo": edge.get("lo"), "net_edge_hi": edge.get("hi"), "hit_rate": perf.get("hit_rate"),
                         "log_loss": perf.get("log_loss"), "prior_log_loss": perf.get("prior_log_loss"),
                         "max_drawdown_bps": perf.get("max_drawdown_bps"), "fees_bps": costs.get("fees"),
                         "spread_bps": costs.get("spread"), "slippage_bps": costs.get("slippage")})
    return rows


def walk_forward_csv(run: BacktestRun) -> str:
    """The rows of :func:`walk_forward_rows` as CSV (header ``FOLD_COLUMNS``)."""
    lines = [",".join(FOLD_COLUMNS)]
    for row in walk_forward_rows(run):
        lines.append(",".join("" if row[c] is None else str(row[c]) for c in FOLD_COLUMNS))
    return "\n".join(lines) + "\n"
