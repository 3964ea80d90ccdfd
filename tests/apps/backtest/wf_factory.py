"""A walk-forward result in the exact shape ``apps.backtest.walk_forward`` stores in
``BacktestRun.summary["walk_forward"]`` (documented in ``apps.backtest.reports``), built from a seed:
the pages, exports and browser tests run against it while the engine itself is elsewhere."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

BASELINE_NAMES = ("always_hold", "buy_and_hold", "momentum", "random")
GROUPS = ("eth_1m", "eth_1h", "btc_1m", "cob")
START = datetime(2024, 6, 1, tzinfo=UTC)
DAY_MS = 86_400_000


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _estimate(rng: random.Random, n: int) -> dict:
    mean = round(rng.uniform(-4, 4), 3)
    return {"mean": mean, "lo": round(mean - 3, 3), "hi": round(mean + 3, 3), "t": round(mean / 1.5, 3),
            "p": round(rng.uniform(0.01, 0.9), 3), "n": n}


def _ratio(rng: random.Random) -> dict:
    return {"value": round(rng.uniform(-1, 1), 3), "annualised": False, "reason": "span 8.0 d < 30 d"}


def _curve(rng: random.Random, start_ms: int, trades: list[dict]) -> list[list]:
    total, points = 0.0, [[start_ms, 0.0]]
    for t in trades:
        total += t["net_bps"]
        points.append([t["exit_ms"], round(total, 3)])
    return points


def _trades(rng: random.Random, start_ms: int, n: int, *, side: str | None = None) -> list[dict]:
    out = []
    for i in range(n):
        entry = start_ms + (i + 1) * 3_600_000  # hourly entries: two models trading at once share entry times
        gross = round(rng.uniform(-30, 30), 3)
        out.append({"entry_ms": entry, "exit_ms": entry + 900_000, "side": side or rng.choice(("BUY", "SELL")),
                    "gross_bps": gross, "net_bps": round(gross - 21.0, 3), "reason": f"p(up) {rng.uniform(0.5, 0.8):.2f} > 0.55"})
    return out


def perf(rng: random.Random, start_ms: int, *, trades: int = 6) -> dict:
    """One PERF entry (a model or the orchestrator)."""
    table = _trades(rng, start_ms, trades)
    net = sum(t["net_bps"] for t in table)
    return {
        "trades": trades, "net_pnl_bps": round(net, 3), "net_pnl_bps_per_day": round(net / 8, 3),
        "gross_edge_bps_per_trade": _estimate(rng, trades), "net_edge_bps_per_trade": _estimate(rng, trades),
        "hold_pnl_bps": 0.0, "buy_and_hold_bps": -120.3, "hit_rate": 0.52, "hit_rate_p_value": 0.41,
        "log_loss": round(rng.uniform(0.95, 1.05), 4), "prior_log_loss": 0.99, "brier": 0.6,
        "calibration": {"temperature": 1.7, "prior_weight": 0.4},
        "accuracy": {h: {"accuracy": 0.5, "majority_rate": 0.48} for h in ("1m", "5m", "15m", "60m")},
        "confusion": {"labels": ["BUY", "SELL", "HOLD"], "matrix": [[rng.randint(0, 40) for _ in range(3)] for _ in range(3)]},
        "reliability": [{"bin": i, "predicted": (i + 0.5) / 5, "observed": round(rng.uniform(0, 1), 3),
                         "count": rng.randint(1, 200)} for i in range(5)],
        "sharpe": _ratio(rng), "sortino": _ratio(rng), "calmar": {"value": None, "annualised": False, "reason": "no drawdown"},
        "max_drawdown_bps": 35.0, "costs_bps": {"fees": 40.0, "spread": 2.0, "slippage": 0.0},
        "importance": {g: round(rng.uniform(-0.01, 0.05), 4) for g in GROUPS},
        "equity": _curve(rng, start_ms, table), "trades_table": table,
    }


def lite(rng: random.Random, start_ms: int, *, trades: int = 3) -> dict:
    """One LITE entry (a baseline)."""
    table = _trades(rng, start_ms, trades)
    return {"trades": trades, "net_pnl_bps": round(sum(t["net_bps"] for t in table), 3), "net_pnl_bps_per_day": -1.0,
            "net_edge_bps_per_trade": _estimate(rng, trades), "hit_rate": 0.5, "max_drawdown_bps": 12.5,
            "costs_bps": {"fees": 20.0, "spread": 1.0, "slippage": 0.0}, "equity": _curve(rng, start_ms, table)}


def _scope(rng: random.Random, start_ms: int, models: tuple[str, ...], error_model: str | None) -> dict:
    return {"models": {m: ({"error": "training diverged (loss nan)"} if m == error_model else perf(rng, start_ms))
                       for m in models},
            "orchestrator": perf(rng, start_ms, trades=8),
            "baselines": {b: lite(rng, start_ms, trades=0 if b == "always_hold" else 3) for b in BASELINE_NAMES},
            "deflated_sharpe": round(rng.uniform(0, 1), 3), "hit_rate_p_value": round(rng.uniform(0, 1), 3),
            "costs_bps": {"fees": 40.0, "spread": 2.0, "slippage": 0.0}}


def walk_forward_result(*, folds: int = 3, models: tuple[str, ...] = ("cnn", "dqn", "transformer"), seed: int = 0,
                        error_model: str | None = None, error_fold: int = 2) -> dict:
    """A CURRENT-shape walk-forward of ``folds`` 8-day folds; ``error_model`` failed on ``error_fold``."""
    rng = random.Random(seed)
    out_folds = []
    for k in range(1, folds + 1):
        start = START + timedelta(days=8 * k)
        start_ms = int(start.timestamp() * 1000)
        fold = {"fold": k, "start": _iso(start), "end": _iso(start + timedelta(days=8)), "days": 8.0,
                "train": {"start": _iso(START), "end": _iso(start - timedelta(hours=2)), "samples": 10_000 * k},
                "validation": {"start": _iso(start - timedelta(hours=1)), "end": _iso(start), "samples": 60},
                **_scope(rng, start_ms, models, error_model if k == error_fold else None)}
        out_folds.append(fold)
    total = {"days": 8.0 * folds, **_scope(rng, int((START + timedelta(days=8)).timestamp() * 1000), models, None)}
    params = {"symbol": "ETHUSDT", "reference": "BTCUSDT", "start": out_folds[0]["start"], "end": out_folds[-1]["end"],
              "folds": folds, "scheme": "expanding", "horizons_min": [1, 5, 15, 60], "trade_horizon_min": 15,
              "purge_min": 60, "embargo_min": 60, "models": list(models), "epochs": 3, "seed": seed,
              "costs": {"taker_fee_bps": 10.0, "maker_fee_bps": 10.0, "spread_bps": 1.0, "slippage_bps": 0.0,
                        "round_trip_bps": 21.0}, "margin_bps": 2.0, "trials": 1}
    return {"params": params, "folds": out_folds, "total": total}


def legacy_walk_forward() -> dict:
    """The older stored shape (``ml.backtest.walk_forward`` before the evaluation lab)."""
    return {"model": "cnn", "params": {"folds": 2, "model": "cnn", "epochs": 2, "window_days": 1.0},
            "start": "2024-08-06T23:00:00+00:00", "end": "2024-08-08T23:00:00+00:00",
            "folds": [{"fold": k, "train": [0, 1], "test": [1_723_000_000_000 + k * DAY_MS, 1_723_000_000_000 + (k + 1) * DAY_MS],
                       "n_train": 1000, "n_test": 1000, "accuracy": 0.51, "macro_f1": 0.3, "hold_accuracy": 0.5,
                       "trades": 4, "win_rate": 0.5, "mean_trade_bps": -1.0, "pnl_bps": -4.0, "buy_and_hold_bps": 12.0,
                       "actions": {}} for k in (1, 2)],
            "aggregate": {"folds": 2, "n_test": 2000, "pooled_accuracy": 0.51, "trades": 8, "total_pnl_bps": -8.0,
                          "total_buy_and_hold_bps": 24.0, "folds_beating_always_hold": 0,
                          "macro_f1": {"mean": 0.3, "std": 0.01}}}
