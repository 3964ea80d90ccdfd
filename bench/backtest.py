"""Backtest figures: decisions per second of ``manage.py backtest`` over the recorded 2024-08-08/09
spot session with all three models (CNN, DQN, transformer) enabled, and training throughput per
model (samples/s) of the existing trainers on a small fixed sample, on 2 CPU threads.

Target (issue 7): >= 1,000 decisions/s (a day of 1 s decisions in under 90 s). Decisions = engine
seconds that reached the decision step (the completeness gate lets the rest pass as skipped).
Printed for the fast path (default; end to end and per stage) and the per-second engine path.
Training samples/s: CNN and transformer = training samples x epochs / train_seconds; DQN =
updates x batch size / train_seconds (samples drawn from the replay buffer per second).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAIN_THREADS = 2


def _backtest(path: str) -> dict:
    cmd = [sys.executable, str(ROOT / "manage.py"), "backtest", "--path", path]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out[:out.rindex("}") + 1])


def bench_backtest_throughput() -> None:
    """One warm-up run (bootstrap: trains or loads the models), then one measured run of the fast
    path (``apps.backtest.fast``) and one of the per-second engine path for comparison.

    ``backtest_decisions_per_second`` is end to end (reading and replaying the recorded streams
    included); ``backtest_stage_*`` split the fast path's wall time; the decision stage (inputs,
    batch inference, decisions, risk, paper execution and writes) excludes the market-data replay,
    which ``bench.cob`` / ``bench.ingest`` measure on their own."""
    _backtest("fast")
    report = _backtest("fast")
    models = sorted(report["engine"]["ETHUSDT"]["model_predictions"])
    stages = report.get("stage_seconds", {})
    decision_stage = sum(v for k, v in stages.items() if k != "market")
    print(f"backtest_wall_time: {report['wall_seconds']:.2f} s (fast path)")
    print(f"backtest_engine_seconds: {report['seconds']} s")
    print(f"backtest_decisions: {report['decisions']} (models {'+'.join(models)})")
    print(f"backtest_decisions_per_second: {report['decisions_per_second']:.1f} decisions/s (fast path, end to end)")
    for stage, seconds in stages.items():
        print(f"backtest_stage_{stage}: {seconds:.2f} s")
    if decision_stage:
        print(f"backtest_decision_stage_per_second: {report['decisions'] / decision_stage:.1f} decisions/s "
              "(fast path without the market-data replay)")
    if report.get("cpu_seconds"):
        print(f"backtest_decisions_per_cpu_second: {report['decisions'] / report['cpu_seconds']:.1f} decisions/s "
              "(fast path; CPU time of the run, robust to other processes on the machine)")
    print(f"backtest_order_log_sha256: {report['order_log_sha256']}")
    slow = _backtest("per_second")
    print(f"backtest_per_second_path_decisions_per_second: {slow['decisions_per_second']:.1f} decisions/s "
          f"(same order log: {slow['order_log_sha256'] == report['order_log_sha256']})")
    if slow.get("cpu_seconds"):
        print(f"backtest_per_second_path_decisions_per_cpu_second: {slow['decisions'] / slow['cpu_seconds']:.1f} decisions/s")


def bench_training_throughput() -> None:
    """CNN and DQN on the last 2 days of 1m history before the default end, 1 epoch / episode;
    transformer on the recorded USD-M session, 1 epoch."""
    from ml.training.cnn_train import DEFAULT_TRAIN_END_MS, default_training_history, train_cnn
    from ml.training.dqn_train import train_dqn
    from ml.training.sequence_data import default_session_files, session_sequences
    from ml.training.transformer_train import train_transformer

    history = default_training_history()
    start = DEFAULT_TRAIN_END_MS - 2 * 86_400_000
    cnn = train_cnn(history, train_start_ms=start, epochs=1, num_threads=TRAIN_THREADS).metrics
    print(f"cnn_training_throughput: {cnn['n_train'] / cnn['train_seconds']:.0f} samples/s")
    dqn = train_dqn(history, train_start_ms=start, episodes=1, num_threads=TRAIN_THREADS).metrics
    print(f"dqn_training_throughput: {dqn['updates'] * 256 / dqn['train_seconds']:.0f} samples/s")
    seq = session_sequences(default_session_files())
    tr = train_transformer(seq, epochs=1, num_threads=TRAIN_THREADS).metrics
    print(f"transformer_training_throughput: {tr['n_train'] / tr['train_seconds']:.0f} samples/s")


def bench_backtest() -> None:
    bench_training_throughput()
    bench_backtest_throughput()


if __name__ == "__main__":
    bench_backtest()
