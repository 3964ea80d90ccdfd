"""Backtests: the live pipeline (``apps.pipeline.engine.Engine``) over recorded order-book streams,
driven as fast as the CPU allows, trading one fresh paper account per run under its risk manager.

Two paths, same decisions and order log (tests/apps/backtest/test_fast_path.py): "fast" (default,
``apps.backtest.fast``: chunks of seconds, batch inference, buffered decision writes, no market
data or predictions stored) and "per_second" (``Engine.run`` as live: the shared market tables
(candles, COB frames, predictions) receive the same idempotent upserts a replay writes). Both read
the recordings through ``ml.backtest.replay_cache`` (parsed once, kept in GOGO_VAR_DIR/cache).

Isolation: each run trades its own paper account (owner ``gogo-backtest``, inactive user,
``auto_trade`` off so no live or replay session ever picks it up); users' accounts are never
touched.

``start`` / ``end`` (UTC datetimes) cut the session: the engine processes every second from the
recording's start (warm-up of rings and models) but the account opens at ``start``; the data ends
at ``end`` (no later second reaches the engine). The report and series cover [start, end].
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from apps.backtest.models import BacktestRun
from apps.market.convert import datetime_to_ms, ms_to_datetime
from apps.trading.models import Fill, Order, TradingAccount
from apps.trading.positions import PositionState
from ml.backtest import report as bt_report
from ml.market.recording import to_ns

logger = logging.getLogger(__name__)

BACKTEST_USER = "gogo-backtest"
PROGRESS_EVERY_S = 0.5  # wall seconds between stored progress updates (one UPDATE each)
FAST, PER_SECOND = "fast", "per_second"  # params["path"]: apps.backtest.fast (default) or Engine.run
Progress = Callable[[float, str], None]
InputHook = Callable[..., object]  # (inputs: BaseDataInput, next_second: SecondResult | None) -> BaseDataInput


class BacktestError(ValueError):
    """A backtest that cannot run as asked (unknown source, empty span, ...); the message names why."""


def backtest_create(*, source: str = BacktestRun.Source.ORDERBOOK, start: datetime | None = None,
                    end: datetime | None = None, params: dict | None = None, user: AbstractBaseUser | None = None,
                    name: str = "") -> BacktestRun:
    """A PENDING run row (the page creates it, then the task runs it). Raises BacktestError for an
    unknown source or start >= end."""
    if source not in BacktestRun.Source.values:
        raise BacktestError(f"source: must be one of {', '.join(BacktestRun.Source.values)}, got {source!r}")
    if start is not None and end is not None and start >= end:
        raise BacktestError("start must be before end")
    if source == BacktestRun.Source.WALK_FORWARD:
        from apps.backtest.walk_forward import walk_forward_params

        try:
            params = walk_forward_params(params or {})
        except ValueError as exc:
            raise BacktestError(str(exc)) from exc
    return BacktestRun.objects.create(name=name or f"{source} backtest", source=source, start=start, end=end,
                                      params=params or {}, created_by=user)


def backtest_enqueue(*, run: BacktestRun) -> str:
    """Hand the PENDING ``run`` to a worker and return at once: the Celery ``default`` queue
    (``workers.backtest.run_backtest``) when a broker is configured, else, embedded (tasks would run
    eagerly inside the request for minutes), a daemon thread of this process running the same task.
    Call it from ``transaction.on_commit`` so the worker sees the row. Returns "celery" or "thread";
    progress is then read from the row (``BacktestRun.progress``)."""
    from workers.backtest import run_backtest

    if not settings.CELERY_TASK_ALWAYS_EAGER:
        run_backtest.delay(run.pk)
        return "celery"
    threading.Thread(target=_run_in_thread, args=(run.pk,), name=f"backtest-{run.pk}", daemon=True).start()
    return "thread"


def _run_in_thread(run_id: int) -> None:
    from django.db import connection

    from workers.backtest import run_backtest

    try:
        run_backtest(run_id)  # the task body: claims the row, stores a failure on it
    except Exception:  # already stored on the row (FAILED, error); nothing above this thread to re-raise to
        logger.exception("backtest %s failed in its thread", run_id)
    finally:
        connection.close()  # this thread's connection, not left for the server to leak


def backtest_run(*, source: str = BacktestRun.Source.ORDERBOOK, start: datetime | None = None, end: datetime | None = None,
                 params: dict | None = None, user: AbstractBaseUser | None = None, progress: Progress | None = None,
                 run: BacktestRun | None = None, input_hook: InputHook | None = None) -> BacktestRun:
    """Run a backtest to the end and return the FINISHED run (or FAILED, with ``error``, re-raising).

    ``params``: ``recordings`` (list of file paths; default the 2024-08-08/09 spot session);
    ``path``: "fast" (default: chunked replay, batch inference, buffered writes, ``apps.backtest.fast``)
    or "per_second" (``Engine.run``, one second at a time, as live; same order log, slower).
    ``progress(fraction 0..1, message)`` is called at most every PROGRESS_EVERY_S wall seconds (at
    an exchange second divisible by 30) and the fraction is stored on the run. ``input_hook`` is
    for tests only (the look-ahead check's leaky feature): it receives each second's BaseDataInput
    and the *next* second, and returns the input to use.
    The walk-forward source (``apps.backtest.walk_forward``; ``params`` folds, model, epochs,
    window_days) trains on window k and tests on window k + 1 of the candle history.
    The candle-only source (``apps.backtest.candles``) covers [start, end) of the stored 1m/1h/1d
    candles (default: 2024-08-08 23:00 UTC, the models' training end, to the recorded session's start).
    Raises BacktestError for a bad span."""
    run = run or backtest_create(source=source, start=start, end=end, params=params, user=user)
    BacktestRun.objects.filter(pk=run.pk).update(status=BacktestRun.Status.RUNNING, progress=0.0, error="")
    try:
        if run.source == BacktestRun.Source.WALK_FORWARD:
            from apps.backtest.walk_forward import walk_forward_execute

            try:
                walk_forward_execute(run, progress)
            except ValueError as exc:
                raise BacktestError(str(exc)) from exc
        else:
            _run_engine(run, progress, input_hook)
    except Exception as exc:
        _fail(run, f"{type(exc).__name__}: {exc}")
        raise
    return run


def _fail(run: BacktestRun, error: str) -> None:
    run.status, run.error, run.finished_at = BacktestRun.Status.FAILED, error[:2000], timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])


def _account(run: BacktestRun) -> TradingAccount:
    owner, _ = get_user_model().objects.get_or_create(username=BACKTEST_USER, defaults={"is_active": False})
    account, _ = TradingAccount.objects.get_or_create(owner=owner, name=f"backtest-{run.pk}",
                                                      defaults={"auto_trade": False})
    return account


def recordings_of(run: BacktestRun) -> dict[str, list[Path]]:
    """The run's recordings: ``params["recordings"]`` paths grouped by symbol, else the default session."""
    from apps.pipeline.runner import default_recordings, recordings_from_paths

    paths = run.params.get("recordings")
    return recordings_from_paths(paths) if paths else default_recordings()


def recording_span_ms(paths: list[Path]) -> tuple[int, int]:
    """(first, last) receive time (ms since epoch) of recorded stream files (``<ts> <json>`` lines,
    gzip), from the first line of the first file and the last line of the last one. Reading a whole
    gzip file takes ~0.2 s, so the span is remembered per file path, size and modification time:
    in memory and in GOGO_VAR_DIR/cache (``span-*.json``; an unreadable one is read again)."""
    def stat(path: Path) -> tuple:
        st = Path(path).stat()
        return str(path), st.st_size, st.st_mtime_ns

    return _span_ms(stat(paths[0]), stat(paths[-1]))


@functools.lru_cache(maxsize=32)
def _span_ms(first_file: tuple, last_file: tuple) -> tuple[int, int]:
    memo = Path(settings.GOGO_VAR_DIR) / "cache" / \
        f"span-{hashlib.sha256(repr((first_file, last_file)).encode()).hexdigest()[:24]}.json"
    try:
        first, last = json.loads(memo.read_text())
        return int(first), int(last)
    except (OSError, ValueError, TypeError):
        pass

    def heads(path: str) -> list[bytes]:
        with gzip.open(path, "rb") as fh:
            return [line.split(b" ", 1)[0] for line in fh if line.strip()]

    first, last = heads(first_file[0]), heads(last_file[0])
    span = to_ns(int(first[0])) // 1_000_000, to_ns(int(last[-1])) // 1_000_000
    memo.parent.mkdir(parents=True, exist_ok=True)
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(span))
    tmp.replace(memo)  # atomic: a concurrent reader sees no half-written file
    return span


class _TruncatedSession:
    """A MarketSession whose data ends at ``end_ms``: no second after it ever reaches the engine
    (the look-ahead check's truncation; also how ``end`` cuts a run)."""

    def __init__(self, session, end_ms: int) -> None:
        self.session, self.end_ms = session, end_ms

    def __getattr__(self, name: str):
        return getattr(self.session, name)

    def seconds(self):
        for second in self.session.seconds():
            if second.ts > self.end_ms:
                return
            yield second


class _PeekingSession(_TruncatedSession):
    """Knows the current second's successor (``next``), for the tests' leaky hook only: reading one
    second ahead also advances the order books, which is itself a look-ahead."""

    def __init__(self, session) -> None:
        super().__init__(session, end_ms=0)
        self.next = None

    def seconds(self):
        items = self.session.seconds()
        current = next(items, None)
        while current is not None:
            self.next = next(items, None)
            yield current
            current = self.next


def _run_engine(run: BacktestRun, progress: Progress | None, input_hook: InputHook | None) -> None:
    from apps.pipeline.engine import Engine

    recordings = recordings_of(run)
    account = _account(run)
    run.account = account
    run.save(update_fields=["account"])
    from ml.backtest.replay_cache import replay_venue

    venue = replay_venue(recordings, Path(settings.GOGO_VAR_DIR) / "cache")  # parsed once, not per run
    engine = Engine(recordings=recordings, accounts=[], flush_every=60, store_inputs=False, replay_venue=venue)
    first_ms, last_ms = recording_span_ms(recordings[engine.traded.symbol])
    if run.source == BacktestRun.Source.CANDLES:
        from apps.backtest.candles import CandleSession
        from ml.training.cnn_train import DEFAULT_TRAIN_END_MS

        end_ms = datetime_to_ms(run.end) if run.end else first_ms // 60_000 * 60_000
        first_ms = datetime_to_ms(run.start) if run.start else DEFAULT_TRAIN_END_MS
        if first_ms >= end_ms:
            raise BacktestError("start must be before end")
        engine.session = CandleSession(engine, first_ms, end_ms)
        start_ms = None
    else:
        start_ms = datetime_to_ms(run.start) if run.start else None
        end_ms = datetime_to_ms(run.end) if run.end else last_ms
        engine.session = _TruncatedSession(engine.session, end_ms)
    if input_hook is not None:
        peek = engine.session = _PeekingSession(engine.session)
        engine.input_hook = lambda inputs: input_hook(inputs, peek.next)
    series: dict[str, list] = {"ts": [], "mid": [], "equity": [], "position": []}
    opened = False
    reported = time.monotonic()

    def on_second(ts: int) -> None:
        nonlocal opened, reported
        if not opened and (start_ms is None or ts + 1000 >= start_ms):
            _open(engine, account, ts)  # trades from the next second on
            opened = True
            return
        if not opened:
            return
        _sample(series, engine, account, ts)
        if ts // 1000 % 30 == 0 and time.monotonic() - reported >= PROGRESS_EVERY_S:
            reported = time.monotonic()
            _progress(run, progress, (ts - first_ms) / max(1, end_ms - first_ms), ts)

    cpu = time.process_time()
    if run.params.get("path", FAST) == FAST:
        from apps.backtest.fast import run_fast

        engine.stage_seconds = run_fast(engine, on_second=on_second)
    else:
        for update in engine.run():
            on_second(update["ts"])
    engine.cpu_seconds = time.process_time() - cpu  # this process's CPU time (all threads): robust to a busy machine
    _finish(run, engine, account, series, progress)


def _open(engine, account: TradingAccount, ts: int) -> None:
    """Open the run's account on the engine's desk at ``ts`` (no position: a fresh account)."""
    desk = engine.desk.open_account(account=account, position=PositionState(), start_ms=ts)
    engine.desks[account.pk] = desk


def _sample(series: dict, engine, account: TradingAccount, ts: int) -> None:
    """Equity marked at the last known mid (carried over a second without a book)."""
    desk = engine.desks.get(account.pk)
    if desk is None or engine.last_mid is None:
        return
    p = desk.position
    mid = round(float(engine.last_mid), 2)
    equity = account.starting_balance + p.realized_pnl + p.unrealized_pnl(Decimal(str(mid)))
    series["ts"].append(ts)
    series["mid"].append(mid)
    series["equity"].append(round(float(equity), 6))
    series["position"].append(float(p.quantity))


def _progress(run: BacktestRun, progress: Progress | None, fraction: float, ts: int) -> None:
    fraction = min(1.0, max(0.0, fraction))
    detail = f"at {ms_to_datetime(ts).isoformat()}"
    BacktestRun.objects.filter(pk=run.pk).update(progress=fraction, progress_detail=detail)
    if progress is not None:
        progress(fraction, detail)


def _finish(run: BacktestRun, engine, account: TradingAccount, series: dict, progress: Progress | None) -> None:
    """Store the report, the series and the order-log hash (the engine closed its desk at the end)."""
    engine.flush()
    orders = Order.objects.filter(account=account).order_by("ts_event", "client_order_id")
    log = [(datetime_to_ms(o.ts_event), o.side, o.quantity, o.average_price, o.status) for o in orders]
    fills = [bt_report.Fill(datetime_to_ms(f.ts_event), f.order.side, float(f.quantity), float(f.price), float(f.fee))
             for f in Fill.objects.filter(order__account=account).select_related("order").order_by("ts_event", "order_id", "seq")]
    summary = bt_report.backtest_report(ts=series["ts"], mid=series["mid"], equity=series["equity"],
                                        position=series["position"], fills=fills, fee_rate=float(account.fee_rate))
    engine_summary = engine.summary()
    summary["engine"] = engine_summary["instruments"]
    summary["orders"] = len(log)
    summary["orders_by_status"] = {s: sum(1 for o in log if o[4] == s) for s in sorted({o[4] for o in log})}
    summary["decisions"] = engine.counters[engine.traded.symbol].decisions
    summary["skipped_seconds"] = engine.counters[engine.traded.symbol].skipped_inferences
    summary["min_completeness"] = settings.GOGO_MIN_COMPLETENESS
    summary["path"] = run.params.get("path", FAST)
    if getattr(engine, "stage_seconds", None):
        summary["stage_seconds"] = engine.stage_seconds
    summary["cpu_seconds"] = round(getattr(engine, "cpu_seconds", 0.0), 3)
    run.summary, run.series = summary, series
    run.order_log_sha256 = bt_report.order_log_sha256(log)
    run.status, run.progress, run.finished_at = BacktestRun.Status.FINISHED, 1.0, timezone.now()
    run.save()
    if progress is not None:
        progress(1.0, "finished")
    logger.info("backtest %s finished: %d seconds, %d orders, hash %s", run.pk, len(series["ts"]), len(log),
                run.order_log_sha256)


def backtest_csv(*, run: BacktestRun) -> str:
    """The run's per-second series as CSV (``ml.backtest.report.series_csv``); a walk-forward
    run's folds (``apps.backtest.walk_forward.walk_forward_csv``)."""
    if run.source == BacktestRun.Source.WALK_FORWARD:
        from apps.backtest.walk_forward import walk_forward_csv

        return walk_forward_csv(run)
    s = run.series or {}
    return bt_report.series_csv(ts=s.get("ts", []), mid=s.get("mid", []), equity=s.get("equity", []),
                                position=s.get("position", []), fee_rate=float(run.account.fee_rate) if run.account else 0.0)
