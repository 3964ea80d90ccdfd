"""Backtest figures: decisions per second of ``manage.py backtest`` over the recorded 2024-08-08/09
spot session with all three models (CNN, DQN, transformer) enabled, and training throughput per
model (samples/s) of the existing trainers on a small fixed sample, on 2 CPU threads.

Target (issue 7): >= 1,000 decisions/s (a day of 1 s decisions in under 90 s). Decisions = engine
seconds that reached the decision step (the completeness gate lets the rest pass as skipped).
Printed for the fast path (default; end to end, per CPU-second and per stage, with a cold and a
warm market tape; steady state in one process; marginal: the second half of the session alone, the
rate a day-long run approaches) and the per-second engine path, with each run's order-log hash and
load average.
Training samples/s: CNN and transformer = training samples x epochs / train_seconds; DQN =
updates x batch size / train_seconds (samples drawn from the replay buffer per second).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _backtest(path: str) -> dict:
    cmd = [sys.executable, str(ROOT / "manage.py"), "backtest", "--path", path]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    report = json.loads(out[:out.rindex("}") + 1])
    report["load_average"] = os.getloadavg()
    return report


def _byte_compile() -> str:
    """Byte-compile the project's packages (``compileall``; the .pyc files are git-ignored), as an
    installed deployment has them. With PYTHONDONTWRITEBYTECODE set (this machine kind sets it)
    Python never writes them, so every fresh ``manage.py backtest`` compiled the modules the run
    imports lazily (the engine, the fast path, the models: 0.03-0.06 s inside the timed run)."""
    import compileall

    packages = ("apps", "bench", "gogo", "ml", "workers")
    ok = all(compileall.compile_dir(ROOT / p, quiet=1, workers=1) for p in packages)
    why = " (PYTHONDONTWRITEBYTECODE is set here)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""
    return f"{'+'.join(packages)}{why}" if ok else "failed (runs compile their imports)"


def _clear_market_tapes() -> int:
    """Delete the stored market tapes (``ml.backtest.market_tape``) so the next run is cold;
    returns how many files were deleted. The parsed recordings (``replay_cache``) stay."""
    code = "from django.conf import settings; print(settings.GOGO_VAR_DIR)"
    out = subprocess.run([sys.executable, str(ROOT / "manage.py"), "shell", "-c", code], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    tapes = list((Path(out.strip().splitlines()[-1]) / "cache").glob("tape-*.pickle"))
    for path in tapes:
        path.unlink(missing_ok=True)
    return len(tapes)


def _print_run(label: str, report: dict) -> None:
    """One run's figures: end to end, per CPU-second, its cost split and the load at its end."""
    decisions, stages = report["decisions"], report.get("stage_seconds", {})
    load = " ".join(f"{v:.2f}" for v in report["load_average"])
    print(f"backtest_{label}_wall_time: {report['wall_seconds']:.2f} s (load average {load})")
    print(f"backtest_{label}_decisions_per_second: {report['decisions_per_second']:.1f} decisions/s (end to end)")
    if report.get("cpu_seconds"):
        print(f"backtest_{label}_decisions_per_cpu_second: {decisions / report['cpu_seconds']:.1f} decisions/s "
              f"({report['cpu_seconds']:.2f} CPU s of the run: robust to other processes on the machine)")
    for stage, seconds in stages.items():
        print(f"backtest_{label}_stage_{stage}: {seconds:.3f} s ({seconds * 1000 / max(1, report['seconds']):.2f} "
              f"ms per exchange second)")
    if stages:
        decision_stage = sum(v for k, v in stages.items() if k != "market")
        print(f"backtest_{label}_decision_stage_per_second: {decisions / decision_stage:.1f} decisions/s "
              "(without the market step)")
    print(f"backtest_{label}_order_log_sha256: {report['order_log_sha256']}")


def bench_backtest_throughput() -> None:
    """One warm-up run (bootstrap: trains or loads the models), then the fast path
    (``apps.backtest.fast``) cold and warm, and the per-second engine path for comparison.

    Cold: no market tape stored, so the fast path replays the recorded streams (order books, COB
    frames, candles; the parsed recordings come from ``ml.backtest.replay_cache``) and tapes the
    market step's per-second output. Warm: that tape is read instead (``ml.backtest.market_tape``:
    stored COB frames, 1 s candles, trades and 200-level book snapshots; the decision-side work,
    inputs, inference, trading and writes, is done in full). Each run is a fresh process
    (``manage.py backtest``): end to end includes its start-up reads (history, models, run rows).
    ``stage_*`` split the fast path's wall time: market (the market step, or reading the tape),
    inputs (BaseDataInputs), inference (all models, batched), trading (decisions, risk, paper
    execution and their writes)."""
    compiled = _byte_compile()
    _backtest("fast")
    cleared = _clear_market_tapes()
    cold = _backtest("fast")
    warm = _backtest("fast")
    models = sorted(warm["engine"]["ETHUSDT"]["model_predictions"])
    print(f"backtest_engine_seconds: {warm['seconds']} s")
    print(f"backtest_decisions: {warm['decisions']} (models {'+'.join(models)})")
    print(f"backtest_market_tapes_cleared_before_cold_run: {cleared}")
    print(f"backtest_byte_compiled: {compiled}")
    _print_run("fast_cold", cold)
    _print_run("fast_warm", warm)
    # The headline figure: the warm fast path, end to end.
    print(f"backtest_decisions_per_second: {warm['decisions_per_second']:.1f} decisions/s (fast path, warm "
          f"market tape, end to end; cold {cold['decisions_per_second']:.1f})")
    runs = _in_process_runs(4)
    for i, r in enumerate(runs):
        stages = " ".join(f"{k} {v:.3f}" for k, v in r["stages"].items())
        print(f"backtest_fast_in_process_run_{i}: {r['decisions'] / r['wall']:.1f} decisions/s, "
              f"{r['decisions'] / r['cpu']:.1f} per CPU-second (wall {r['wall']:.2f} s, CPU {r['cpu']:.2f} s; "
              f"stages {stages}; load {r['load'][0]:.2f}; {r['sha256'][:16]})")
    steady = sorted(runs[1:], key=lambda r: r["wall"])[len(runs[1:]) // 2]
    print(f"backtest_fast_steady_decisions_per_second: {steady['decisions'] / steady['wall']:.1f} decisions/s "
          f"({steady['decisions'] / steady['cpu']:.1f} per CPU-second; median of runs 1-{len(runs) - 1} in one "
          "process: no process start-up, tape in memory)")
    half, full = _marginal_runs(4)
    extra = full["decisions"] - half["decisions"]
    print(f"backtest_fast_marginal_decisions_per_second: {extra / (full['wall'] - half['wall']):.1f} decisions/s "
          f"({extra / (full['cpu'] - half['cpu']):.1f} per CPU-second; the last {extra} decisions of the session: "
          f"median full run {full['wall']:.3f} s minus median run cut at {half['end']} {half['wall']:.3f} s; "
          "the rate a long backtest approaches, without the per-run costs)")
    slow = _backtest("per_second")
    _print_run("per_second_path", slow)
    same = slow["order_log_sha256"] == cold["order_log_sha256"] == warm["order_log_sha256"] and \
        all(r["sha256"] == warm["order_log_sha256"] for r in runs)
    print(f"backtest_order_log_same_on_all_paths: {same}")


def _in_process_runs(runs: int) -> list[dict]:
    """``runs`` fast backtests in one fresh process (``python -m bench.backtest in-process N``):
    the first pays the process's one-time costs (imports, first torch calls, connections, the
    tape read from disk), the later ones show the steady state a long backtest runs at."""
    cmd = [sys.executable, "-m", "bench.backtest", "in-process", str(runs)]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _marginal_runs(pairs: int) -> tuple[dict, dict]:
    """``pairs`` runs cut halfway through the session and ``pairs`` full runs, alternating, in one
    process (``python -m bench.backtest marginal N``); returns the median of each (wall, CPU) and
    its decisions. Their difference is the cost of the session's second half alone: the per-run
    costs (account, history, models, tape, report) cancel out."""
    import statistics

    cmd = [sys.executable, "-m", "bench.backtest", "marginal", str(pairs)]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    result = []
    for kind in ("half", "full"):
        mine = [r for r in rows if r["kind"] == kind]
        result.append({"wall": statistics.median(r["wall"] for r in mine), "cpu": statistics.median(r["cpu"] for r in mine),
                       "decisions": mine[0]["decisions"], "end": mine[0]["end"]})
    return result[0], result[1]


def _django_bootstrapped() -> None:
    """This process set up as ``manage.py backtest`` runs: Django, then ``bootstrap`` (models, history)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gogo.settings")
    import django

    django.setup()
    from apps.pipeline.bootstrap import bootstrap

    bootstrap()


def _marginal_main(pairs: int) -> None:
    import time

    _django_bootstrapped()
    from apps.backtest.services import backtest_run, recording_span_ms
    from apps.market.convert import ms_to_datetime
    from apps.pipeline.runner import default_recordings

    first, last = recording_span_ms(default_recordings()["ETHUSDT"])
    middle = ms_to_datetime((first + last) // 2 // 1000 * 1000)
    backtest_run(params={"path": "fast"})  # warm-up: the tape in memory, the first torch calls
    for _ in range(pairs):
        for kind, end in (("half", middle), ("full", None)):
            wall, cpu = time.perf_counter(), time.process_time()
            run = backtest_run(params={"path": "fast"}, end=end)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(json.dumps({"kind": kind, "wall": wall, "cpu": cpu, "decisions": run.summary["decisions"],
                              "end": end.isoformat() if end else None}), flush=True)


def _in_process_main(runs: int) -> None:
    import time

    _django_bootstrapped()
    from apps.backtest.services import backtest_run

    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        run = backtest_run(params={"path": "fast"})
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(json.dumps({"wall": wall, "cpu": cpu, "decisions": run.summary["decisions"],
                          "stages": run.summary["stage_seconds"], "sha256": run.order_log_sha256,
                          "load": os.getloadavg()}), flush=True)


def bench_training_throughput() -> None:
    """The three families in cascade on the training samples of every 60th minute of the candle
    history plus the two order-book sessions (``ml.training.market_data``), 1 epoch each, on one
    thread (``ml.training.market_train.fit``)."""
    import time

    from ml.market.recording import default_data_dir
    from ml.training.live_train import train_live_family
    from ml.training.market_data import training_samples

    started = time.perf_counter()
    samples = training_samples(str(default_data_dir()), 60)
    print(f"training_samples_build: {time.perf_counter() - started:.1f} s")
    print(f"training_samples: {len(samples)} count")
    upstream = {}
    for name in ("cnn", "transformer", "dqn"):
        trained = train_live_family(name, samples, dict(upstream), epochs=1, patience=1)
        upstream[name] = trained.model
        m = trained.metrics
        print(f"{name}_training_throughput: {m['samples']['train'] / m['train_seconds']:.0f} samples/s")


def bench_backtest() -> None:
    bench_training_throughput()
    bench_backtest_throughput()


if __name__ == "__main__":
    if sys.argv[1:2] == ["in-process"]:
        _in_process_main(int(sys.argv[2]))
    elif sys.argv[1:2] == ["marginal"]:
        _marginal_main(int(sys.argv[2]))
    else:
        bench_backtest()
