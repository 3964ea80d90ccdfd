"""The backtest's fast path: the engine's market, inference and trading steps over chunks of
seconds, with batch inference and buffered writes. Same decisions and order log as
``Engine.run`` (the per-second path) on the same data; tests/apps/backtest/test_fast_path.py
compares the two.

Per chunk of ``chunk`` exchange seconds:

1. replay: the session's seconds go through the engine's own market step (``Engine._market``:
   rings, 1 s candles, COB frames, rollups, gap records) and each second's BaseDataInput is built
   from the rings as ``Engine._infer_and_trade`` builds it, with the same completeness gate. What
   the trading step will read is kept per second: the book's first ``depth`` levels and touch
   (``ml.backtest.batch.FrozenBook``; the paper client walks at most 200), the trades, the market
   conditions and the 1m candles. A backtest stores no market data (the candle and COB tables
   already hold the recorded session, and a replay writes them) and no predictions;
2. inference: every enabled model once over the chunk (``ml.backtest.batch.predict_many``);
3. trading: second by second, the desk's mixture of experts, risk cycle, stops, decision and paper
   execution (``apps.trading.desk``) exactly as the engine calls them, through
   :class:`BacktestDesk`, which buffers the decisions (bulk insert, flushed before any order so
   the order can reference its decision), reads the kill switch from memory (a backtest account
   is never switched from outside) and stores the risk state once, at the end. Orders, fills,
   order events, risk events and positions are written as they happen, by the same services
   (they are rare: one per cooldown at most).

The replay skips the per-bucket imbalance moving averages of the COB frames (``_NoBucketMA``):
no model reads them and nothing is stored.

Differences from the per-second path, all outside the order log: the decisions link to no
Prediction row (none is stored), the orchestrator settings are read once at the start (the
per-second path re-reads them every second), and the transformer's probabilities agree to ~1e-6
rather than bit for bit (``ml.backtest.batch``).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from django.conf import settings
from django.db import transaction

from apps.market.convert import ms_to_datetime
from apps.trading.desk import AccountDesk, TradingDesk
from apps.trading.models import Decision
from ml.backtest.batch import FrozenBook, predict_many
from ml.features.base_input import BaseDataInput, build_base_data_input
from ml.models.output import ModelOutput
from ml.orchestrator import MarketConditions

logger = logging.getLogger(__name__)

CHUNK_SECONDS = 512
BOOK_DEPTH = 200  # PaperExecutionClient's default walk depth
DECISION_BATCH = 2000


class BacktestDesk(TradingDesk):
    """The trading desk with the backtest's storage (module docstring, step 3)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pending: list[Decision] = []

    def _decision_record(self, desk: AccountDesk, *, ts: int, result, prediction, inputs: dict) -> Decision:
        decision = Decision(account=desk.account, instrument=self.instrument, ts_event=ms_to_datetime(ts),
                            action=result.action, confidence=result.confidence, threshold=result.threshold,
                            prediction=prediction, reason=result.reason[:255], filter=result.filter,
                            inputs=inputs or {})
        self.pending.append(decision)
        return decision

    def _kill_switch(self, desk: AccountDesk) -> bool:
        return desk.risk_row.kill_switch

    def _risk_state_save(self, desk: AccountDesk, ts: int) -> None:
        """Stored once by ``close``."""

    def _send(self, desk: AccountDesk, intent, ts: int, price: float, book):
        self.flush()  # the order's decision must exist first
        return super()._send(desk, intent, ts, price, book)

    def flush(self) -> None:
        """Insert the buffered decisions (their primary keys are set, as Postgres returns them)."""
        if self.pending:
            Decision.objects.bulk_create(self.pending, batch_size=DECISION_BATCH)
            self.pending = []

    def close(self, *, now_ms: int) -> None:
        self.flush()
        super().close(now_ms=now_ms)


@dataclass(slots=True)
class Tick:
    """What the trading step of one second reads (module docstring, step 1)."""

    ts: int
    inputs: BaseDataInput
    completeness: dict[str, float]
    gate: str
    book: FrozenBook | None
    mid: float | None
    last_mid: float | None
    conditions: MarketConditions
    trades: tuple
    candles_1m: list


def run_fast(engine, *, on_second: Callable[[int], None], chunk: int = CHUNK_SECONDS, threads: int | None = None) -> dict:
    """Drive ``engine`` (an ``apps.pipeline.engine.Engine`` with its session set) to the end of its
    session by chunks; ``on_second(ts)`` is called after each second's trading step, as
    ``Engine.run`` yields. The engine's desk is a :class:`BacktestDesk`. Torch uses ``threads``
    intra-op threads meanwhile (default GOGO_INFERENCE_THREADS, 1; restored after): measured on
    the 2-core machine shared with other processes, 2 threads ran the batch of 256 transformer
    inputs 2.5x slower and the batch-1 CNN 9x slower than 1 thread (spinning OpenMP threads).

    Returns wall seconds per stage: {"market": reading and replaying the recorded streams (order
    books, COB frames, candles), "inputs": BaseDataInputs and snapshots, "inference": all models,
    "trading": decisions, risk, paper execution and their writes}."""
    if engine.inference_in_worker:  # a backtest runs its models in-process, in batches
        from apps.predictions.services import models_load_enabled

        engine.models, engine.inference_in_worker = models_load_enabled(), False
    _skip_bucket_mas(engine.session)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or settings.GOGO_INFERENCE_THREADS)
    timings = dict.fromkeys(("market", "inputs", "inference", "trading"), 0.0)
    started = time.perf_counter()
    try:
        ticks: list[Tick] = []
        for second in engine.session.seconds():
            t0 = time.perf_counter()
            if engine.first_ts is None:
                engine._start(second.ts)
                engine.desk = BacktestDesk(instrument=engine.traded, config=engine.config)
            ticks.append(_replay(engine, second))
            timings["inputs"] += time.perf_counter() - t0
            if len(ticks) >= chunk:
                _trade_chunk(engine, ticks, on_second, timings)
                ticks = []
        if ticks:
            _trade_chunk(engine, ticks, on_second, timings)
        if engine.last_ts is not None:
            t0 = time.perf_counter()
            engine.desk.close(now_ms=engine.last_ts)
            timings["trading"] += time.perf_counter() - t0
    finally:
        torch.set_num_threads(previous)
    timings["market"] = time.perf_counter() - started - sum(timings.values())
    return {k: round(v, 3) for k, v in timings.items()}


class _NoBucketMA:
    """Stands in for ``ml.market.cob.BucketImbalanceMA`` in a fast backtest: the per-bucket imbalance
    MAs (~0.8 ms per frame, the largest single cost of the replay) are no model input (the COB
    component reads ``imbalance_5`` and ``imbalance_ma``) and a fast backtest stores no frame."""

    def update(self, frame):
        return frame


def _skip_bucket_mas(session) -> None:
    """Swap the session's per-instrument BucketImbalanceMA for :class:`_NoBucketMA` (a wrapped
    session forwards ``_instruments``; the candle-only session has none)."""
    for inst in (getattr(session, "_instruments", None) or {}).values():
        if hasattr(inst, "bucket_ma"):
            inst.bucket_ma = _NoBucketMA()


def _replay(engine, second) -> Tick:
    """Step 1 for one second: the engine's market step and this second's input (no storage)."""
    from apps.predictions.inference import _gate_reason

    for symbol in engine.instruments:
        engine._market(symbol, second)
    _record_gaps(engine, second.ts)
    engine._buffers.candles.clear()  # a backtest stores no market data
    engine._buffers.frames.clear()
    symbol = engine.traded.symbol
    inputs = build_base_data_input(
        ts=second.ts, symbol=symbol, reference_symbol=engine.reference.symbol, rings=engine.rings[symbol],
        reference_ring=engine.rings[engine.reference.symbol]["1s"], frame_ring=engine.frame_rings[symbol],
        derived=False)  # no model reads the indicators or pivots
    if engine.input_hook is not None:
        inputs = engine.input_hook(inputs)
    completeness = inputs.completeness()
    counters = engine.counters[symbol]
    counters.completeness_sum += completeness["overall"]
    counters.completeness_n += 1
    book = second.books.get(symbol)
    mid = book.mid() if book is not None else None
    engine.last_mid = mid or engine.last_mid
    return Tick(ts=second.ts, inputs=inputs, completeness=completeness,
                gate=_gate_reason(completeness, settings.GOGO_MIN_COMPLETENESS),
                book=FrozenBook(book, BOOK_DEPTH) if book is not None else None, mid=mid, last_mid=engine.last_mid,
                conditions=engine._conditions(book, mid, completeness["overall"]),
                trades=tuple(second.trades.get(symbol, ())), candles_1m=list(engine.recent[symbol]["1m"]))


def _record_gaps(engine, ts: int) -> None:
    """``Engine._record_gaps`` when a synchronizer counted a new gap (``MarketSession.stats``
    rebuilds every counter of every symbol, too slow to read every second of a backtest)."""
    sync = getattr(engine.session, "synchronizer", None)
    if sync is None or any(sync(s).stats.gaps != engine._gaps_seen[s] for s in engine.instruments):
        engine._record_gaps(ts)


def _infer(engine, ticks: list[Tick]) -> dict[str, list]:
    """Step 2: model name -> one result per tick (ModelOutput, an exception, or None when gated)."""
    gated = [i for i, t in enumerate(ticks) if not t.gate]
    results = {}
    for name, (model, _checkpoint) in engine.models.items():
        per_tick: list = [None] * len(ticks)
        try:
            outs = predict_many(name, model, [ticks[i].inputs for i in gated])
        except Exception as exc:  # noqa: BLE001 - a broken model must not stop the others
            logger.exception("backtest inference: model %s failed", name)
            outs = [exc] * len(gated)
        for i, out in zip(gated, outs, strict=True):
            per_tick[i] = out
        results[name] = per_tick
    return results


def _trade_chunk(engine, ticks: list[Tick], on_second: Callable[[int], None], timings: dict) -> None:
    """Steps 2 and 3 for a chunk (module docstring)."""
    t0 = time.perf_counter()
    results = _infer(engine, ticks)
    t1 = time.perf_counter()
    timings["inference"] += t1 - t0
    counters = engine.counters[engine.traded.symbol]
    with transaction.atomic():
        for i, tick in enumerate(ticks):
            outputs = {n: r[i] for n, r in results.items() if isinstance(r[i], ModelOutput)}
            engine.last_outputs.update(outputs)
            for name in outputs:
                counters.model_predictions[name] = counters.model_predictions.get(name, 0) + 1
            if not outputs:
                counters.skipped_inferences += 1
            else:
                counters.predictions += 1
                output, gating = engine.desk.mixture(outputs, tick.ts, tick.mid)
                for desk in engine.books.values():
                    engine.desk.trade(desk, output=output, gating=gating, prediction=None, ts=tick.ts, book=tick.book,
                                      conditions=tick.conditions, candles_1m=tick.candles_1m, trades=tick.trades)
                counters.decisions += len(engine.books)
            engine.last_ts = tick.ts
            engine.last_mid = tick.last_mid
            on_second(tick.ts)
        engine.desk.flush()
    timings["trading"] += time.perf_counter() - t1

