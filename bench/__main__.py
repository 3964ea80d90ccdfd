"""Run every benchmark and print one line per figure: ``name: value unit``.

Figures, not assertions: nothing here fails on a slow machine.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench_replay() -> None:
    """Headless replay of the 2024-08-08/09 spot session at max speed (second run: warm model)."""
    cmd = [sys.executable, str(ROOT / "manage.py"), "replay", "--speed", "max"]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)  # first run trains/loads, fills history
    started = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - started
    summary = json.loads(out.strip().splitlines()[-1])
    seconds = summary["instruments"]["ETHUSDT"]["cob_frames"]
    decisions = sum(i["decisions"] for i in summary["instruments"].values())
    print(f"replay_wall_time: {summary['wall_seconds']:.2f} s (process {wall:.2f} s)")
    print(f"replay_exchange_seconds_per_second: {seconds / summary['wall_seconds']:.1f} s/s")
    print(f"replay_decisions_per_second: {decisions / summary['wall_seconds']:.1f} decisions/s")


if __name__ == "__main__":
    from bench.cob import bench_cob

    bench_cob()
    from bench.models import bench_models

    bench_models()
    from bench.ingest import bench_ingest

    bench_ingest()
    bench_replay()
    from bench.backtest import bench_backtest

    bench_backtest()
    from bench.evaluation import bench_evaluation

    bench_evaluation()
    from bench.api import bench_api

    bench_api()
    from bench.ws import bench_ws

    bench_ws()
