"""The backtest's fast path: the engine's market, inference and trading steps over chunks of
seconds, with batch inference and buffered writes. Same decisions and order log as
``Engine.run`` (the per-second path) on the same data; tests/apps/backtest/test_fast_path.py
compares the two.

Per chunk of ``chunk`` exchange seconds:

1. replay: the session's seconds go through the engine's own market step (``Engine._market``:
   rings, 1 s candles, COB frames, rollups, gap records). The seconds come from the market tape
   (``ml.backtest.market_tape``: the market step's per-second output, stored by the first run
   over a recording) or, cold, from replaying the recorded streams, taped on the way. What the
   trading step will read is kept per second: the book's first ``depth`` levels and touch
   (``ml.backtest.batch.FrozenBook``; the paper client walks at most 200), the trades, the market
   conditions and the 1m candles. Each second's BaseDataInput equals the one
   ``Engine._infer_and_trade`` builds from the rings, with the same completeness gate: its
   1m/1h/1d windows are taken at the second, its 1 s windows (primary, reference, COB) are cut
   for the whole chunk as views of one gap-filled timeline (``ml.features.sliding``). A backtest
   stores no market data (the candle and COB tables already hold the recorded session, and a
   replay writes them) and no predictions;
2. inference: every enabled model once over the chunk (``ml.backtest.batch.predict_many``);
3. trading: second by second, the desk's mixture of experts, risk cycle, stops, decision and paper
   execution (``apps.trading.desk``) exactly as the engine calls them, through
   :class:`BacktestDesk`, which buffers the decisions (one COPY per chunk, :func:`decisions_copy`;
   their keys are drawn ahead, so an order references its decision before the insert: the
   foreign key is checked at commit), reads the kill switch from memory
   (a backtest account is never switched from outside) and stores the risk state once, at the
   end. Orders, fills, order events, risk events and positions are written as they happen, by
   the same services (they are rare: one per cooldown at most).

The replay skips the per-bucket imbalance moving averages of the COB frames (``_NoBucketMA``):
no model reads them and nothing is stored.

Differences from the per-second path, all outside the order log: the decisions link to no
Prediction row (none is stored), the orchestrator settings are read once at the start (the
per-second path re-reads them every second), and the transformer's probabilities agree to ~1e-6
rather than bit for bit (``ml.backtest.batch``).
"""
from __future__ import annotations

import dataclasses
import gc
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from django.conf import settings
from django.db import connection, transaction

from apps.market import services as market_services
from apps.market.convert import ms_to_datetime
from apps.market.models import DataGap
from apps.trading.desk import AccountDesk, TradingDesk
from apps.trading.execution import PaperExecutionClient
from apps.trading.models import Decision
from ml.backtest.batch import FrozenBook, predict_many
from ml.backtest.market_tape import TapeSecond, TapeWriter, tape_get, tape_key
from ml.features.base_input import (
    COB_COMPONENT,
    COMPONENTS,
    PRIMARY_TIMEFRAMES,
    WINDOW,
    BaseDataInput,
    build_base_data_input,
    last_closed_open_time,
)
from ml.features.sliding import SecondTimeline
from ml.market.session import MarketSession
from ml.models.output import ModelOutput
from ml.orchestrator import MarketConditions

logger = logging.getLogger(__name__)

CHUNK_SECONDS = 512
BOOK_DEPTH = 200  # PaperExecutionClient's default walk depth
ID_POOL = 1024  # decision ids drawn from the sequence per query


class BacktestDesk(TradingDesk):
    """The trading desk with the backtest's storage (module docstring, step 3)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pending: list[Decision] = []
        self.ids: list[int] = []  # decision ids drawn ahead (decisions_copy)

    def _decision_record(self, desk: AccountDesk, *, ts: int, result, prediction, inputs: dict) -> Decision:
        """The decision, buffered with its primary key already drawn from the table's sequence, so
        that an order can reference it before it is inserted: the foreign key is checked at commit
        (Django creates it DEFERRABLE INITIALLY DEFERRED) and ``flush`` runs before the chunk's
        transaction commits."""
        decision = Decision(account=desk.account, instrument=self.instrument, ts_event=ms_to_datetime(ts),
                            action=result.action, confidence=result.confidence, threshold=result.threshold,
                            prediction=prediction, reason=result.reason[:255], filter=result.filter,
                            inputs=inputs or {})
        decision.pk = decision_ids_draw(self.ids, 1)[0]
        self.pending.append(decision)
        return decision

    def trade(self, desk: AccountDesk, *, trades=(), **kwargs) -> dict:
        """``TradingDesk.trade``; the second's prints are not handed to a paper client without open
        orders (``PaperMatcher.on_trade`` only fills resting orders: ~25 calls a second for nothing)."""
        if trades and isinstance(desk.client, PaperExecutionClient) and not desk.client.matcher.open_orders():
            trades = ()
        return super().trade(desk, trades=trades, **kwargs)

    def _kill_switch(self, desk: AccountDesk) -> bool:
        return desk.risk_row.kill_switch

    def _risk_state_save(self, desk: AccountDesk, ts: int) -> None:
        """Stored once by ``close``."""

    def flush(self) -> None:
        """Insert the buffered decisions (one COPY); called before the chunk's transaction commits."""
        if self.pending:
            decisions_copy(self.pending, self.ids)
            self.pending = []

    def _send(self, desk: AccountDesk, intent, ts: int, price: float, book):
        if intent.decision is not None and intent.decision.pk is None:
            self.flush()  # SQLite: no key drawn ahead, the order's decision is inserted first
        return super()._send(desk, intent, ts, price, book)

    def close(self, *, now_ms: int) -> None:
        self.flush()
        super().close(now_ms=now_ms)


_DECISION_COLUMNS = ("id", "account_id", "instrument_id", "ts_event", "action", "confidence", "threshold",
                     "prediction_id", "reason", "filter", "inputs")


def decision_ids_draw(ids: list[int], n: int) -> list[int]:
    """``n`` primary keys for new decisions, taken from the front of ``ids`` (a pool drawn earlier
    from the table's id sequence with ``nextval``, as an insert draws them), topped up by one query
    of at least ID_POOL ids when short. Unused ids are gaps in the sequence, as a rolled-back insert
    leaves. On SQLite (the embedded default) there is no sequence: the keys are left to the insert
    (``[None] * n``)."""
    if connection.vendor != "postgresql":
        return [None] * n
    if len(ids) < n:
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                           [Decision._meta.db_table, max(ID_POOL, n - len(ids))])
            ids.extend(row[0] for row in cursor.fetchall())
    mine = ids[:n]
    del ids[:n]
    return mine


def decisions_copy(decisions: list[Decision], ids: list[int] | None = None) -> None:
    """Insert unsaved ``decisions`` with one ``COPY ... FROM STDIN`` and set their primary keys.

    COPY returns no keys, so a decision without one gets it first from ``ids``
    (:func:`decision_ids_draw`). ~10x cheaper than ``bulk_create``, whose client-side quoting of
    the ``inputs`` JSON dominated the backtest's writes. Same rows: ``inputs`` goes in as JSON text
    (Postgres stores jsonb canonically, so key order and spacing do not matter). One statement, so
    all or none are stored; raises django.db.IntegrityError (a decision already stored for the same
    account, instrument and second) like ``bulk_create``. On SQLite (the embedded default) it is
    ``bulk_create``."""
    if connection.vendor != "postgresql":  # the embedded default (SQLite): no COPY; bulk_create sets the keys
        Decision.objects.bulk_create(decisions)
        return
    ids = ids if ids is not None else []
    missing = [d for d in decisions if d.pk is None]
    for d, pk in zip(missing, decision_ids_draw(ids, len(missing)), strict=True):
        d.pk = pk
    table = Decision._meta.db_table
    columns = ", ".join(_DECISION_COLUMNS)
    with connection.cursor() as cursor, connection.wrap_database_errors, \
            cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # noqa: S608 - our own names
        for d in decisions:
            copy.write_row((d.pk, d.account_id, d.instrument_id, d.ts_event, d.action, d.confidence, d.threshold,
                            d.prediction_id, d.reason, d.filter, json.dumps(d.inputs)))
    for d in decisions:
        d._state.adding, d._state.db = False, "default"


@dataclass(slots=True)
class Tick:
    """What the trading step of one second reads (module docstring, step 1)."""

    ts: int
    inputs: BaseDataInput | None  # None until the chunk's inputs are cut (_chunk_inputs)
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
    """Drive ``engine`` (an ``apps.pipeline.engine.Engine`` with its session set) to the end of its
    session by chunks; ``on_second(ts)`` is called after each second's trading step, as
    ``Engine.run`` yields. The engine's desk is a :class:`BacktestDesk`. Torch uses ``threads``
    intra-op threads meanwhile (default GOGO_INFERENCE_THREADS, 1; restored after): measured on
    the 2-core machine shared with other processes, 2 threads ran the batch of 256 transformer
    inputs 2.5x slower and the batch-1 CNN 9x slower than 1 thread (spinning OpenMP threads); on
    the idle machine 2 threads saved ~0.015 s of a 0.45 s run, within the noise.

    The models run in this thread: a background inference thread a chunk behind the replay was
    measured 2-3x slower end to end (the trading step's Python and the models' Python parts
    fight for the GIL).

    Returns wall seconds per stage: {"market": reading the market tape or replaying the recorded
    streams (order books, COB frames, candles), "inputs": BaseDataInputs and snapshots,
    "inference": all models, "trading": decisions, risk, paper execution and their writes}."""
    if engine.inference_in_worker:  # a backtest runs its models in-process, in batches
        from apps.predictions.services import models_load_enabled

        engine.models, engine.inference_in_worker = models_load_enabled(), False
    _skip_bucket_mas(engine.session)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or settings.GOGO_INFERENCE_THREADS)
    timings = dict.fromkeys(("market", "inputs", "inference", "trading"), 0.0)
    started = time.perf_counter()
    try:
        with _gc_frozen():
            ticks: list[Tick] = []
            for second in _market_seconds(engine):
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
    key = tape_key(venue_key, [i.spec for i in inner._instruments.values()], engine.traded.symbol, BOOK_DEPTH,
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


def _replay(engine, second: TapeSecond) -> Tick:
    """Step 1 for one second: the engine's market step and what this second's input needs (no
    storage). The 1 s windows (primary, reference, COB) are cut later for the whole chunk
    (:func:`_chunk_inputs`, ``ml.features.sliding``); the 1m/1h/1d windows change with the rings
    and are taken now. With the tests' input hook (or REST backfills, which rewrite past rows) each
    second's input is built by ``build_base_data_input`` here, as before."""
    for symbol in engine.instruments:
        engine._market(symbol, second)
    _record_gaps(engine, second)
    engine._buffers.candles.clear()  # a backtest stores no market data
    engine._buffers.frames.clear()
    symbol = engine.traded.symbol
    book = second.book
    mid = book.mid() if book is not None else None
    engine.last_mid = mid or engine.last_mid  # (the candle-only session sets it from the 1m closes)
    tick = Tick(ts=second.ts, inputs=None, completeness=None, gate="", book=book, mid=mid, last_mid=engine.last_mid,
                conditions=engine._conditions(book, mid, None), trades=second.trades,
                candles_1m=list(engine.recent[symbol]["1m"]))
    timelines = _timelines(engine)
    if timelines is None:
        inputs = build_base_data_input(
            ts=second.ts, symbol=symbol, reference_symbol=engine.reference.symbol, rings=engine.rings[symbol],
            reference_ring=engine.rings[engine.reference.symbol]["1s"], frame_ring=engine.frame_rings[symbol],
            derived=False)  # no model reads the indicators or pivots
        if engine.input_hook is not None:
            inputs = engine.input_hook(inputs)
        _set_inputs(engine, tick, inputs)
        return tick
    for timeline in timelines.values():
        timeline.record(second.ts)
    rings = engine.rings[symbol]
    tick.slow = {name: rings[tf].window(last_closed_open_time(second.ts, tf), WINDOW) for name, tf in _SLOW.items()}
    return tick


_SLOW = {name: tf for name, tf in PRIMARY_TIMEFRAMES.items() if tf != "1s"}


def _timelines(engine) -> dict[str, SecondTimeline] | None:
    """The engine's 1 s timelines (component name -> SecondTimeline), made on first use; None when
    each second's input must be built on its own (:func:`_replay`)."""
    if engine.input_hook is not None or engine.rest is not None:
        return None
    timelines = getattr(engine, "_fast_timelines", None)
    if timelines is None:
        symbol = engine.traded.symbol
        timelines = engine._fast_timelines = {
            "primary_1s": SecondTimeline(engine.rings[symbol]["1s"]),
            "reference_1s": SecondTimeline(engine.rings[engine.reference.symbol]["1s"]),
            COB_COMPONENT: SecondTimeline(engine.frame_rings[symbol])}
    return timelines


def _chunk_inputs(engine, ticks: list[Tick]) -> None:
    """Each tick's BaseDataInput from the chunk's timelines and its own 1m/1h/1d windows, equal to
    ``build_base_data_input(..., derived=False)`` at that second (``ml.features.sliding``)."""
    timelines = _timelines(engine)
    if timelines is None or not ticks or ticks[0].inputs is not None:
        return
    for timeline in timelines.values():
        timeline.build()
    symbol, reference = engine.traded.symbol, engine.reference.symbol
    for tick in ticks:
        components, present = {}, {}
        for name in COMPONENTS:
            if name in tick.slow:
                components[name], present[name] = tick.slow[name]
            else:
                components[name], present[name] = timelines[name].window(tick.ts, WINDOW)
        inputs = BaseDataInput(symbol=symbol, reference_symbol=reference, ts=tick.ts, components=components,
                               present=present)
        inputs.validate()
        tick.slow = None
        _set_inputs(engine, tick, inputs)
    for timeline in timelines.values():
        timeline.trim()


def _set_inputs(engine, tick: Tick, inputs: BaseDataInput) -> None:
    """Attach the input, its completeness and gate to ``tick``; count the completeness."""
    from apps.predictions.inference import _gate_reason

    completeness = inputs.completeness()
    counters = engine.counters[engine.traded.symbol]
    counters.completeness_sum += completeness["overall"]
    counters.completeness_n += 1
    tick.inputs, tick.completeness = inputs, completeness
    tick.gate = _gate_reason(completeness, settings.GOGO_MIN_COMPLETENESS)
    tick.conditions = dataclasses.replace(tick.conditions, completeness=completeness["overall"])


def _record_gaps(engine, second: TapeSecond) -> None:
    """``Engine._record_gaps`` from the taped synchronizer gap counts (``MarketSession.stats``
    rebuilds every counter of every symbol, too slow to read every second, and a warm run has no
    live session); a session without synchronizers (candle-only) goes through the engine's."""
    if not second.sync_gaps:
        engine._record_gaps(second.ts)
        return
    for symbol, gaps in second.sync_gaps.items():
        if gaps > engine._gaps_seen[symbol]:
            market_services.data_gap_record(instrument=engine.instruments[symbol], cause=DataGap.Cause.SEQUENCE_GAP,
                                            ts_event_ms=second.ts,
                                            detail=f"{gaps - engine._gaps_seen[symbol]} gap(s), resynced")
            engine._gaps_seen[symbol] = gaps
        engine.counters[symbol].sequence_gaps = gaps


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
    _chunk_inputs(engine, ticks)
    t1 = time.perf_counter()
    timings["inputs"] += t1 - t0
    results = _infer(engine, ticks)
    t0, t1 = t1, time.perf_counter()
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

