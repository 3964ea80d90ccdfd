"""The backtest's fast path: the engine's market, inference and trading steps over chunks of
seconds, with batch inference and buffered writes. Same decisions and order log as
``Engine.run`` (the per-second path) on the same data; tests/apps/backtest/test_fast_path.py
compares the two.

Per chunk of ``chunk`` exchange seconds:

1. replay: the session's seconds go through the engine's own market step (``Engine.market_step``:
   rings, 1 s candles, COB frames, rollups, gap records). The seconds come from the market tape
   (``ml.backtest.market_tape``: the market step's per-second output, stored by the first run
   over a recording) or, cold, from replaying the recorded streams, taped on the way. What the
   trading step will read is kept per second: the book's first ``depth`` levels and touch
   (``ml.backtest.batch.FrozenBook``; the paper client walks at most 200), the trades, the market
   conditions and the 1m candles. Each second's BaseDataInput equals the one
   ``Engine.infer_and_trade`` builds from the rings, with the same completeness gate: its
   1m/1h/1d windows are taken at the second, its 1 s windows (primary, reference, COB) are cut
   for the whole chunk as views of one gap-filled timeline (``ml.features.sliding``). A backtest
   stores no market data (the candle and COB tables already hold the recorded session, and a
   replay writes them) and no predictions;
2. inference: every enabled model once over the chunk (``ml.backtest.batch.predict_many``);
3. trading: second by second, the desk's mixture of experts, risk cycle, stops, decision and paper
   execution (``Trading.decide``, the engine's own trading stage) on the engine's
   :class:`~apps.pipeline.stages.storage.BufferedStorage`: the decisions are buffered and inserted
   with one COPY per chunk, the kill switch is read from memory and the risk state is stored once,
   at the end. Orders, fills, order events, risk events and positions are written as they happen,
   by the same services (they are rare: one per cooldown at most).

The replay skips the per-bucket imbalance moving averages of the COB frames
(``MarketSession.skip_bucket_mas``): no model reads them and nothing is stored.

Differences from the per-second path, all outside the order log: the decisions link to no
Prediction row (none is stored), the orchestrator settings are read once at the start (the
per-second path re-reads them every second), and the transformer's probabilities agree to ~1e-6
rather than bit for bit (``ml.backtest.batch``).
"""
from __future__ import annotations

import dataclasses
import gc
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from django.conf import settings
from django.db import transaction

from apps.pipeline.stages.storage import BufferedStorage
from ml.backtest.batch import FrozenBook, predict_many
from ml.backtest.market_tape import TapeSecond, TapeWriter, tape_get, tape_key
from ml.features.base_input import (
    COB_COMPONENT,
    COMPONENTS,
    PRIMARY_TIMEFRAMES,
    WINDOW,
    BaseDataInput,
    last_closed_open_time,
)
from ml.features.sliding import SecondTimeline
from ml.market.session import MarketSession
from ml.models.output import ModelOutput
from ml.orchestrator import MarketConditions

logger = logging.getLogger(__name__)

CHUNK_SECONDS = 512
BOOK_DEPTH = 200  # PaperExecutionClient's default walk depth


@dataclass(slots=True)
class Tick:
    """What the trading step of one second reads (module docstring, step 1)."""

    ts: int
    inputs: BaseDataInput | None  # None until the chunk's inputs are cut (FastRun.chunk_inputs)
    completeness: dict[str, float] | None
    gate: str
    book: FrozenBook | None
    mid: float | None
    last_mid: float | None
    conditions: MarketConditions
    trades: tuple
    candles_1m: list
    slow: dict | None = None  # component -> (values, present) of the 1m/1h/1d windows at this second


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """Freeze the garbage collector's view of the process meanwhile (``gc.freeze``, then
    ``gc.unfreeze``): the objects alive before the run (Django, torch, the models)
    and the market tape once read (~16,000 seconds' objects) are moved to the permanent
    generation, so the run's own full collections do not scan them again. Measured: one full
    collection over the ~350,000 objects of a backtest process took 0.15 s, a quarter of a warm
    run of the recorded session. Objects that die are still freed (reference counting) and the
    run's own objects are collected as usual; cycles among the frozen objects wait until the
    unfreeze. ``_market_seconds`` freezes again once the tape is read."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_fast(engine, *, on_second: Callable[[int], None], chunk: int = CHUNK_SECONDS, threads: int | None = None) -> dict:
    """Drive ``engine`` (an ``apps.pipeline.engine.Engine`` with its session set, not started) to
    the end of its session by chunks; ``on_second(ts)`` is called after each second's trading step,
    as ``Engine.run`` yields. The engine writes through a ``BufferedStorage``. Torch uses ``threads``
    intra-op threads meanwhile (default GOGO_INFERENCE_THREADS, 1; restored after): measured on
    the 2-core machine shared with other processes, 2 threads ran the batch of 256 transformer
    inputs 2.5x slower and the batch-1 CNN 9x slower than 1 thread (spinning OpenMP threads); on
    the idle machine 2 threads saved ~0.015 s of a 0.45 s run, within the noise.

    The models run in this thread: a background inference thread a chunk behind the replay was
    measured 2-3x slower end to end (the trading step's Python and the models' Python parts
    fight for the GIL).

    Returns wall seconds per stage: {"market": reading the market tape or replaying the recorded
    streams (order books, COB frames, candles), "inputs": BaseDataInputs and snapshots,
    "inference": all models, "trading": decisions, risk, paper execution and their writes}.
    Raises RuntimeError when the engine has already started."""
    engine.inference.in_process()  # a backtest runs its models in-process, in batches
    engine.use_storage(BufferedStorage())
    _skip_bucket_mas(engine.session)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or settings.GOGO_INFERENCE_THREADS)
    timings = dict.fromkeys(("market", "inputs", "inference", "trading"), 0.0)
    started = time.perf_counter()
    run = FastRun(engine)
    try:
        with _gc_frozen():
            ticks: list[Tick] = []
            for second in _market_seconds(engine):
                t0 = time.perf_counter()
                if not engine.started:
                    engine.start(second.ts)
                ticks.append(run.replay(second))
                timings["inputs"] += time.perf_counter() - t0
                if len(ticks) >= chunk:
                    run.trade_chunk(ticks, on_second, timings)
                    ticks = []
            if ticks:
                run.trade_chunk(ticks, on_second, timings)
            t0 = time.perf_counter()
            engine.finish()
            timings["trading"] += time.perf_counter() - t0
    finally:
        torch.set_num_threads(previous)
    timings["market"] = time.perf_counter() - started - sum(timings.values())
    return {k: round(v, 3) for k, v in timings.items()}


def _skip_bucket_mas(session) -> None:
    """``MarketSession.skip_bucket_mas`` (a wrapped session forwards it; the candle-only session has
    no frames): the per-bucket imbalance MAs are no model input and a fast backtest stores no frame."""
    skip = getattr(session, "skip_bucket_mas", None)
    if skip is not None:
        skip()


def _market_seconds(engine) -> Iterator[TapeSecond]:
    """The session's seconds as :class:`TapeSecond`: from the market tape when one covers the run
    (warm), else from the recordings' replay, taped on the way (cold; ``ml.backtest.market_tape``).
    Only a plain recorded session is taped (not the candle-only session, nor a run with the tests'
    input hook, whose peeking session advances the books one second early)."""
    session = engine.session
    inner, end_ms = getattr(session, "session", None), getattr(session, "end_ms", None)
    venue_key = getattr(getattr(inner, "venue", None), "cache_key", None)
    if not isinstance(inner, MarketSession) or engine.input_hook is not None or venue_key is None:
        symbol = engine.traded.symbol
        for second in session.seconds():
            yield _tape_second(second, symbol, getattr(session, "synchronizer", None), engine.instruments)
        return
    key = tape_key(venue_key, inner.specs, engine.traded.symbol, BOOK_DEPTH,
                   inner.close_delay_ms)
    cache_dir = Path(settings.GOGO_VAR_DIR) / "cache"
    tape = tape_get(key, end_ms, cache_dir)
    engine.market_tape = "warm" if tape is not None else "cold"
    if tape is not None:
        gc.freeze()  # the tape's objects too (_gc_frozen); a streamed tape's segments come and go
        yield from tape.replay(end_ms)
        return
    writer, complete = TapeWriter(key, end_ms, cache_dir), True
    try:
        for second in inner.seconds():
            if end_ms is not None and second.ts > end_ms:
                complete = False
                break
            taped = _tape_second(second, engine.traded.symbol, inner.synchronizer, engine.instruments)
            writer.append(taped)
            yield taped
    except BaseException:  # the run failed or stopped reading (GeneratorExit): no partial tape
        writer.abort()
        raise
    writer.finish(complete)


def _tape_second(second, symbol: str, synchronizer, instruments) -> TapeSecond:
    """What the fast path reads of a ``SecondResult`` (the book frozen now: it changes next second)."""
    book = second.books.get(symbol)
    sync_gaps = {s: synchronizer(s).stats.gaps for s in instruments} if synchronizer is not None else {}
    return TapeSecond(ts=second.ts, candles=second.candles, frames=second.frames, gaps=second.gaps,
                      trades=tuple(second.trades.get(symbol, ())),
                      book=FrozenBook(book, BOOK_DEPTH) if book is not None else None, sync_gaps=sync_gaps)


_SLOW = {name: tf for name, tf in PRIMARY_TIMEFRAMES.items() if tf != "1s"}


class FastRun:
    """The fast path's own state over one engine: the 1 s timelines (component name ->
    SecondTimeline over the engine's rings), made on first use; None when each second's input must
    be built on its own (the tests' input hook, or a live REST client, which rewrites past rows)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.symbol = engine.traded.symbol
        self.timelines: dict[str, SecondTimeline] | None = None

    def _timelines(self) -> dict[str, SecondTimeline] | None:
        engine = self.engine
        if engine.input_hook is not None or engine.market.rest is not None:
            return None
        if self.timelines is None:
            rings = engine.market.rings
            self.timelines = {
                "primary_1s": SecondTimeline(rings[self.symbol]["1s"]),
                "reference_1s": SecondTimeline(rings[engine.reference.symbol]["1s"]),
                COB_COMPONENT: SecondTimeline(engine.market.frame_rings[self.symbol])}
        return self.timelines

    def replay(self, second: TapeSecond) -> Tick:
        """Step 1 for one second: the engine's market step and what this second's input needs (no
        storage). The 1 s windows (primary, reference, COB) are cut later for the whole chunk
        (:meth:`chunk_inputs`, ``ml.features.sliding``); the 1m/1h/1d windows change with the rings
        and are taken now. Without timelines each second's input is built here, as the engine does."""
        engine = self.engine
        engine.market_step(second, second.sync_gaps or None)
        book = second.book
        mid = book.mid() if book is not None else None
        engine.last_mid = mid or engine.last_mid  # (the candle-only session sets it from the 1m closes)
        tick = Tick(ts=second.ts, inputs=None, completeness=None, gate="", book=book, mid=mid, last_mid=engine.last_mid,
                    conditions=engine.trading.conditions(book, mid, None), trades=second.trades,
                    candles_1m=list(engine.market.recent[self.symbol]["1m"]))
        timelines = self._timelines()
        if timelines is None:  # no model reads the indicators or pivots
            self._set_inputs(tick, engine.input_builder.build(second.ts, derived=False))
            return tick
        for timeline in timelines.values():
            timeline.record(second.ts)
        rings = engine.market.rings[self.symbol]
        tick.slow = {name: rings[tf].window(last_closed_open_time(second.ts, tf), WINDOW) for name, tf in _SLOW.items()}
        reference_1m = engine.market.rings[engine.reference.symbol].get("1m")
        if reference_1m is not None:  # as InputBuilder.build: the optional BTC 1m component
            tick.slow["reference_1m"] = reference_1m.window(last_closed_open_time(second.ts, "1m"), WINDOW)
        return tick

    def chunk_inputs(self, ticks: list[Tick]) -> None:
        """Each tick's BaseDataInput from the chunk's timelines and its own 1m/1h/1d windows, equal to
        ``build_base_data_input(..., derived=False)`` at that second (``ml.features.sliding``)."""
        timelines = self._timelines()
        if timelines is None or not ticks or ticks[0].inputs is not None:
            return
        for timeline in timelines.values():
            timeline.build()
        reference = self.engine.reference.symbol
        for tick in ticks:
            components, present = {}, {}
            for name in COMPONENTS:
                if name in tick.slow:
                    components[name], present[name] = tick.slow[name]
                else:
                    components[name], present[name] = timelines[name].window(tick.ts, WINDOW)
            if "reference_1m" in tick.slow:
                components["reference_1m"], present["reference_1m"] = tick.slow["reference_1m"]
            inputs = BaseDataInput(symbol=self.symbol, reference_symbol=reference, ts=tick.ts, components=components,
                                   present=present)
            inputs.validate()
            tick.slow = None
            self._set_inputs(tick, inputs)
        for timeline in timelines.values():
            timeline.trim()

    def _set_inputs(self, tick: Tick, inputs: BaseDataInput) -> None:
        """Attach the input, its completeness (counted) and gate to ``tick``."""
        from apps.predictions.inference import gate_reason

        completeness = self.engine.input_builder.completeness(inputs)
        tick.inputs, tick.completeness = inputs, completeness
        tick.gate = gate_reason(completeness, settings.GOGO_MIN_COMPLETENESS)
        tick.conditions = dataclasses.replace(tick.conditions, completeness=completeness["overall"])

    def infer(self, ticks: list[Tick]) -> dict[str, list]:
        """Step 2: model name -> one result per tick (ModelOutput, an exception, or None when gated)."""
        gated = [i for i, t in enumerate(ticks) if not t.gate]
        results = {}
        for name, (model, _checkpoint) in self.engine.inference.models.items():
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

    def trade_chunk(self, ticks: list[Tick], on_second: Callable[[int], None], timings: dict) -> None:
        """Steps 2 and 3 for a chunk (module docstring), in one transaction."""
        engine = self.engine
        t0 = time.perf_counter()
        self.chunk_inputs(ticks)
        t1 = time.perf_counter()
        timings["inputs"] += t1 - t0
        results = self.infer(ticks)
        t0, t1 = t1, time.perf_counter()
        timings["inference"] += t1 - t0
        with transaction.atomic():
            for i, tick in enumerate(ticks):
                outputs = {n: r[i] for n, r in results.items() if isinstance(r[i], ModelOutput)}
                engine.inference.record(outputs)
                if outputs:  # the orchestrator settings were read at the start (module docstring)
                    engine.trading.decide(outputs, ts=tick.ts, mid=tick.mid, book=tick.book, conditions=tick.conditions,
                                          trades=tick.trades, candles_1m=tick.candles_1m, refresh_config=False)
                engine.last_ts = tick.ts
                engine.last_mid = tick.last_mid
                on_second(tick.ts)
            engine.flush()
        timings["trading"] += time.perf_counter() - t1
