"""Evaluation lab figures: the walk-forward of the learning issue and Optuna trials per hour.

- ``walk_forward_wall_time``: ``manage.py backtest --walk-forward 6 --start 2025-05-20 --end 2025-07-19
  --json`` in a fresh process (the command a user runs), end to end;
- ``learning_walk_forward_net_pnl_bps`` per model, for the orchestrated decisions and for each baseline
  (always-HOLD, buy-and-hold with fees, momentum, random), over the purged folds of that run, with the
  per-fold orchestrated figure in bps/day and the log-loss beside the class prior's;
- ``optuna_trials_per_hour``: a 3-trial search on a 3-day span (1 epoch per model), in process.

The database is the environment's DATABASE_URL (the embedded SQLite default without one).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WF_ARGS = ["backtest", "--walk-forward", "6", "--start", "2025-05-20", "--end", "2025-07-19", "--json"]


def bench_walk_forward() -> dict:
    """Run the learning issue's walk-forward command and print its figures; returns the report."""
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, check=True, capture_output=True)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "manage.py", *WF_ARGS], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    wall = time.perf_counter() - started
    report = json.loads(out)
    print(f"walk_forward_wall_time: {wall:.1f} s")
    total = report["total"]
    for name, perf in {**total["models"], "orchestrator": total["orchestrator"]}.items():
        edge = perf.get("net_edge_bps_per_trade") or {}
        interval = f" (net edge/trade {edge['mean']:+.1f} bps, 95% [{edge['lo']:+.1f}, {edge['hi']:+.1f}])" \
            if edge.get("lo") is not None else ""
        print(f"learning_walk_forward_net_pnl_bps[{name}]: {perf['net_pnl_bps']:.1f} bps over {perf['trades']} trades"
              f"{interval}; log_loss {perf['log_loss']:.4f} vs prior {perf['prior_log_loss']:.4f}")
    for name, perf in total["baselines"].items():
        print(f"learning_walk_forward_net_pnl_bps[{name}]: {perf['net_pnl_bps']:.1f} bps over {perf['trades']} trades")
    per_day = [round(f["orchestrator"]["net_pnl_bps_per_day"], 2) for f in report["folds"]]
    print(f"learning_walk_forward_orchestrator_bps_per_day_by_fold: {per_day} bps/day")
    return report


def bench_optuna() -> None:
    """Optuna trials per hour over a small walk-forward."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gogo.settings")
    from ml.data.history import load_history
    from ml.evaluation.search import search
    from ml.evaluation.walk_forward import WalkForwardParams
    from ml.market.recording import default_data_dir

    eth, _ = load_history(default_data_dir(), "ETHUSDT")
    btc, _ = load_history(default_data_dir(), "BTCUSDT", ("1m",))
    start = 1_752_624_000_000  # 2025-07-16 00:00 UTC
    base = WalkForwardParams(start_ms=start, end_ms=start + 3 * 86_400_000, folds=2, epochs=1, max_train=5000,
                             importance_samples=300)
    result = search(eth, btc, base, n_trials=3)
    print(f"optuna_trials_per_hour: {result['trials_per_hour']:.1f} trials/h (3 trials, 3 days, 2 folds, "
          f"{result['seconds']:.0f} s)")


def bench_evaluation() -> None:
    bench_optuna()
    bench_walk_forward()


if __name__ == "__main__":
    bench_evaluation()
