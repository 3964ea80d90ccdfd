"""Backtest figures: decisions per second of ``manage.py backtest`` over the recorded 2024-08-08/09
spot session with all three models (CNN, DQN, transformer) enabled, and training throughput per
model (samples/s) of the existing trainers on a small fixed sample, on 2 CPU threads.

Target (issue 7): >= 1,000 decisions/s (a day of 1 s decisions in under 90 s). Decisions = engine
seconds that reached the decision step (the completeness gate lets the rest pass as skipped).
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


def bench_backtest_throughput() -> None:
    """One warm-up run (bootstrap: trains or loads the models), then one measured run."""
    cmd = [sys.executable, str(ROOT / "manage.py"), "backtest"]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    report = json.loads(out[:out.rindex("}") + 1])
    models = sorted(report["engine"]["ETHUSDT"]["model_predictions"])
    print(f"backtest_wall_time: {report['wall_seconds']:.2f} s")
    print(f"backtest_engine_seconds: {report['seconds']} s")
    print(f"backtest_decisions_per_second: {report['decisions_per_second']:.1f} decisions/s (models {'+'.join(models)})")
    print(f"backtest_order_log_sha256: {report['order_log_sha256']}")


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
