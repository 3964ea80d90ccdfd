"""Ingestion fault soak: the live code path against the replay venue with forced disconnects and bad diffs.

Replay venue (``apps.market.venues.replay_server``, the recorded 2024-08-08/09 Binance spot BTCUSDT +
ETHUSDT session, ~650 s, at ``speed`` x real time) on a loopback port -> :class:`LiveVenue` (aiohttp
websocket, ccxt REST) -> :class:`MarketSession` -> a candle store, while an injector on the venue's
loop forces ``disconnects`` TCP drops spread over the session and drops, duplicates and reorders
``fault_rate`` of the diffs of each symbol (one pending fault per symbol at a time).

Printed figures (not assertions; ``tests/apps/market/venues/test_live_faults.py`` asserts a smaller run):

- sequence faults injected (dropped + reordered diffs, logged by the venue with their ``U``/``u``) vs
  detected: a fault counts as detected when its update ids fall in a chain break the synchronizer
  reported (``[expected, got - 1]``) or in the id range a resync snapshot rebuilt;
- disconnects injected vs reconnects and stream gaps seen by the client;
- resync time p50 / p95: wall time from the chain break to the book synced again (REST snapshot +
  buffered diffs), in the consumer thread;
- 1 s candles expected (built from the recorded trades, every second from the first to the last the
  session closed) vs stored (streamed, or fetched again through REST klines for each hole the session
  reported); lost = expected but not stored, duplicated = stored with more trades than recorded or
  written twice with different values, wrong = other differences;
- final books vs the venue's truth (top 100 levels a side; only when the whole session was read).
"""
from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from apps.market.venues.binance_ws import StreamConfig
from apps.market.venues.ccxt_rest import Backoff, BinanceRest
from apps.market.venues.live import LiveVenue, VenueEndpoints
from apps.market.venues.replay_server import ReplayServer
from ml.market.candles import second_candles
from ml.market.events import Candle
from ml.market.recording import default_spot_session
from ml.market.session import InstrumentSpec, MarketSession
from ml.market.sync import BookSynchronizer

logger = logging.getLogger(__name__)

SPECS = (InstrumentSpec("ETHUSDT", 1.0), InstrumentSpec("BTCUSDT", 10.0))
SYMBOLS = tuple(s.symbol for s in SPECS)
CONFIG = StreamConfig(backoff=Backoff(0.02, 0.2), idle_timeout_s=5.0, stable_after_s=0.1)


class MemoryStore:
    """1 s candles upserted on (symbol, open_time), as ``candle_upsert_many`` does on the database;
    holes backfilled through the venue's REST klines (the client ``candle_backfill`` uses)."""

    def __init__(self, rest: BinanceRest) -> None:
        self.rest = rest
        self.rows: dict[str, dict[int, Candle]] = {s: {} for s in SYMBOLS}
        self.conflicts = 0  # a key written again with other values
        self.backfilled = 0
        self.holes = 0

    def upsert(self, symbol: str, candles: list[Candle]) -> None:
        rows = self.rows[symbol]
        for c in candles:
            old = rows.get(c.open_time)
            if old is not None and _key(old) != _key(c):
                self.conflicts += 1
            rows[c.open_time] = c

    def backfill(self, symbol: str, start_ms: int, end_ms: int) -> None:
        self.holes += 1
        fetched = [c for c in self.rest.candles(symbol, "1s", start_ms=start_ms, end_ms=end_ms - 1, limit=1000)
                   if start_ms <= c.open_time < end_ms]
        self.backfilled += len(fetched)
        self.upsert(symbol, fetched)

    def stored(self, symbol: str) -> dict[int, Candle]:
        return self.rows[symbol]


@dataclass
class SoakResult:
    wall_s: float = 0.0
    disconnects: int = 0
    reconnects: int = 0
    stream_gaps: int = 0
    seq_injected: Counter = field(default_factory=Counter)
    seq_detected: int = 0
    duplicates_injected: int = 0
    duplicates_ignored: int = 0
    chain_breaks: int = 0
    resync_ms: list[float] = field(default_factory=list)
    expected: int = 0
    stored: int = 0
    streamed: int = 0
    backfilled: int = 0
    holes: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    books_equal: dict[str, bool] = field(default_factory=dict)
    undetected: list = field(default_factory=list)


class _Server:
    """The replay venue on its own loop thread."""

    def __init__(self, speed: float | None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="replay-venue", daemon=True)
        self.thread.start()
        self.server = self.call(lambda: ReplayServer(default_spot_session(), speed=speed, heartbeat=20.0))
        self.call(self.server.start)

    def call(self, fn, timeout: float = 30.0):
        async def run():
            result = fn()
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def stop(self) -> None:
        self.call(self.server.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


FAULT_MARGIN_MS = 2000


async def _inject(server: ReplayServer, venue: LiveVenue, disconnects: int, fault_rate: float, until_ms: int,
                  rng: random.Random) -> None:
    """Drop the connection ``disconnects`` times spread over the session up to ``until_ms`` (exchange
    time), and keep each symbol's dropped / duplicated / reordered diffs at ``fault_rate`` of its diffs
    until FAULT_MARGIN_MS before ``until_ms``: a fault needs later diffs to be seen (a drop of the
    recording's last diff, armed late on a loaded machine, is undetectable by any synchronizer)."""
    start_ms = server.clock_ms()
    every_ms = (until_ms - start_ms) / (disconnects + 1)
    done = 0
    kinds = ("drop_next", "duplicate_next", "reorder_next")
    made = {s: Counter() for s in SYMBOLS}
    while server.clock_ms() < until_ms and not server.finished.is_set():
        await asyncio.sleep(0.005)
        status = venue.status
        if server.clients == 0 or status["state"] != "live" or (status["last_message_ms"] or 0) < status["connected_at"]:
            continue  # a new connection that has not delivered a message yet would merge two holes
        if done < disconnects and server.clock_ms() >= start_ms + (done + 1) * every_ms:
            done += server.drop_connection() > 0
            continue
        if server.clock_ms() >= until_ms - FAULT_MARGIN_MS:
            continue
        for symbol in SYMBOLS:
            if server.pending_faults(symbol):
                continue
            target = int(venue.counts[symbol]["deltas"] * fault_rate)
            due = [k for k in kinds if made[symbol][k] < target]
            if due:
                kind = rng.choice(due)
                getattr(server, kind)(symbol)
                made[symbol][kind] += 1


def soak(*, disconnects: int = 100, fault_rate: float = 0.01, speed: float = 25.0, until_s: float | None = None,
         store_factory=MemoryStore, seed: int = 11) -> SoakResult:
    """Run the soak (module docstring) over the session's first ``until_s`` exchange seconds (all by
    default); returns the figures. ``store_factory(rest)`` builds the candle store."""
    runner = _Server(speed)
    server = runner.server
    result = SoakResult()
    try:
        t0 = time.perf_counter()
        endpoints = VenueEndpoints(server.url, server.ws_url)
        rest = BinanceRest(rest_url=server.url, backoff=Backoff(0.02, 0.2))
        venue = LiveVenue(venue="binance", symbols=list(SYMBOLS), endpoints=endpoints, config=CONFIG,
                          rng=random.Random(seed), rest=rest)
        store = store_factory(rest)
        t_first = runner.call(server.clock_ms)
        t_last = max(server.recorded_trades(s)[-1].ts_event for s in SYMBOLS)
        until_ms = t_last if until_s is None else t_first + int(until_s * 1000)
        injector = asyncio.run_coroutine_threadsafe(
            _inject(server, venue, disconnects, fault_rate, until_ms, random.Random(seed)), runner.loop)
        session = MarketSession(venue, SPECS, close_delay_ms=venue.close_delay_ms)
        probes = {s: _Probe(session.synchronizer(s)) for s in SYMBOLS}
        stopper = threading.Thread(target=_stop_when_drained, args=(runner, venue, until_ms), daemon=True)
        stopper.start()
        for second in session.seconds():
            for symbol, candle in second.candles.items():
                store.upsert(symbol, [candle])
                result.streamed += 1
            for symbol, gap in second.gaps.items():
                store.backfill(symbol, gap.from_ms, gap.to_ms)
            if second.ts >= until_ms:
                break
        venue.close()
        injector.result(30)
        result.wall_s = time.perf_counter() - t0
        _figures(result, runner, venue, store, probes, session)
    finally:
        runner.stop()
    return result


class _Probe:
    """Times resyncs and records the update-id ranges a synchronizer found missing or rebuilt."""

    def __init__(self, sync: BookSynchronizer) -> None:
        self.sync = sync
        self.ranges: list[tuple[int, int]] = []
        self.resync_ms: list[float] = []
        self._broken_at: float | None = None
        self._apply, self._source = sync.apply_delta, sync.snapshot_source
        sync.apply_delta = self.apply_delta
        sync.snapshot_source = self.snapshot

    def apply_delta(self, delta) -> None:
        gaps = self.sync.stats.gaps
        started = time.perf_counter()
        self._apply(delta)
        if self.sync.stats.gaps > gaps:
            gap = self.sync.last_gap
            self.ranges.append((gap.expected, gap.got - 1))
            self._broken_at = self._broken_at or started
        if self._broken_at is not None and self.sync.synced:
            self.resync_ms.append((time.perf_counter() - self._broken_at) * 1000)
            self._broken_at = None

    def snapshot(self, symbol: str):
        snap = self._source(symbol)
        gap = self.sync.last_gap
        if gap is not None:
            self.ranges.append((gap.expected, snap.last_update_id))
        return snap


def _stop_when_drained(runner: _Server, venue: LiveVenue, until_ms: int) -> None:
    """Close the venue once the replay clock passed ``until_ms`` and the consumer took every event."""
    server = runner.server
    while runner.call(server.clock_ms) < until_ms + 2000 and not server.finished.is_set():
        time.sleep(0.05)
    quiet = 0
    while quiet < 10 and venue.status["state"] != "stopped":
        quiet = quiet + 1 if venue.pending == 0 else 0
        time.sleep(0.05)
    venue.close()


def _figures(result: SoakResult, runner: _Server, venue: LiveVenue, store, probes: dict, session: MarketSession) -> None:
    server = runner.server
    result.disconnects = server.faults["connections_dropped"]
    result.reconnects = venue.status["reconnects"]
    result.stream_gaps = sum(venue.counts[s]["stream_gaps"] for s in SYMBOLS) // len(SYMBOLS) - 1  # minus the connect
    result.duplicates_injected = server.faults["diffs_duplicated"]
    result.duplicates_ignored = sum(venue.counts[s]["duplicates"] for s in SYMBOLS)
    result.chain_breaks = sum(session.synchronizer(s).stats.gaps for s in SYMBOLS)
    for kind, symbol, first, last in runner.call(lambda: list(server.fault_log)):
        result.seq_injected[kind] += 1
        if any(lo <= first and last <= hi for lo, hi in probes[symbol].ranges):
            result.seq_detected += 1
        else:
            result.undetected.append((kind, symbol, first, last))
    result.resync_ms = [ms for p in probes.values() for ms in p.resync_ms]
    result.backfilled, result.holes = store.backfilled, store.holes
    for symbol in SYMBOLS:
        stored = store.stored(symbol)
        expected = second_candles(server.recorded_trades(symbol), symbol)
        emitted = sorted(stored)
        if not emitted:
            continue
        want = {t: c for t, c in expected.items() if emitted[0] <= t <= emitted[-1]}
        result.expected += len(want)
        result.stored += len(stored)
        for t, c in want.items():
            got = stored.get(t)
            if got is None:
                result.lost += 1
            elif got.trade_count > c.trade_count:
                result.duplicated += 1
            elif _key(got) != _key(c):
                result.wrong += 1
        if not server.finished.is_set():
            continue  # the venue moved on after we stopped reading: no common state to compare
        truth = runner.call(lambda s=symbol: server.truth_book(s).copy())
        book = session.synchronizer(symbol).book
        result.books_equal[symbol] = session.synchronizer(symbol).synced and all(
            book.levels(side, 100) == truth.levels(side, 100) for side in ("bid", "ask"))
    result.duplicated += getattr(store, "conflicts", 0)


def _key(c: Candle) -> tuple:
    return (c.open, c.high, c.low, c.close, round(c.volume, 8), c.trade_count)


def bench_ingest(disconnects: int = 100, fault_rate: float = 0.01, speed: float = 25.0) -> SoakResult:
    """Print the soak figures (module docstring)."""
    logging.getLogger("apps.market.venues").setLevel(logging.ERROR)
    logging.getLogger("ml.market").setLevel(logging.ERROR)
    r = soak(disconnects=disconnects, fault_rate=fault_rate, speed=speed)
    injected = sum(r.seq_injected.values())
    pct = 100.0 * r.seq_detected / injected if injected else 100.0
    p50, p95 = (np.percentile(r.resync_ms, [50, 95]) if r.resync_ms else (float("nan"), float("nan")))
    print(f"ingest_session: spot BTCUSDT+ETHUSDT 2024-08-08/09 at {speed:g}x, {r.wall_s:.1f} s wall")
    print(f"ingest_disconnects: {r.disconnects} injected, {r.reconnects} reconnects, {r.stream_gaps} stream gaps marked")
    print(f"ingest_sequence_faults: {injected} injected ({r.seq_injected['dropped']} dropped, "
          f"{r.seq_injected['reordered']} reordered), {r.seq_detected} detected ({pct:.1f}%), "
          f"{r.chain_breaks} chain breaks in all (reconnects included)")
    print(f"ingest_duplicate_diffs: {r.duplicates_injected} injected, {r.duplicates_ignored} ignored")
    print(f"ingest_resync_time: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({len(r.resync_ms)} resyncs)")
    print(f"ingest_candles_1s: {r.expected} expected, {r.stored} stored ({r.streamed} streamed, {r.backfilled} "
          f"backfilled in {r.holes} holes), {r.lost} lost, {r.duplicated} duplicated, {r.wrong} wrong")
    print("ingest_books_equal_truth: " + ", ".join(f"{s} {'yes' if ok else 'NO'}" for s, ok in r.books_equal.items()))
    if r.undetected:
        print(f"ingest_undetected_faults: {r.undetected[:10]}")
    return r


if __name__ == "__main__":
    bench_ingest()
