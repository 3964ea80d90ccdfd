"""Shared fixtures: the recorded Binance data, read once per test session.

The data lives outside the repository (``$GOGO_DATA_DIR``, else ``<repo>/../shared/data``).
"""
from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ml.market.events import Candle, CobFrame
from ml.market.orderbook import OrderBook
from ml.market.recording import default_data_dir, default_spot_session
from ml.market.replay import ReplayVenue
from ml.market.session import MarketSession
from tests.ml.market.recorded import HAND_CHECKED_SECOND, SPOT_SPECS


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = default_data_dir()
    if not (path / "orderbook").is_dir():
        pytest.fail(f"recorded market data not found in {path} (set GOGO_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def spot_recordings(data_dir: Path) -> dict[str, list[Path]]:
    return default_spot_session(data_dir)


@pytest.fixture(scope="session")
def spot_venue(spot_recordings: dict[str, list[Path]]) -> ReplayVenue:
    return ReplayVenue(spot_recordings)


@dataclass
class SessionRun:
    """What one full MarketSession pass over the spot recording produced."""

    seconds: list[int] = field(default_factory=list)
    frames: dict[str, list[CobFrame]] = field(default_factory=dict)
    candles: dict[str, list[Candle]] = field(default_factory=dict)
    books: dict[str, OrderBook] = field(default_factory=dict)  # copies at HAND_CHECKED_SECOND
    crossed_seconds: int = 0
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    end_books_equal_truth: dict[str, bool] = field(default_factory=dict)
    end_books: dict[str, OrderBook] = field(default_factory=dict)  # after the last event
    elapsed_s: float = 0.0


@pytest.fixture(scope="session")
def spot_run(spot_venue: ReplayVenue) -> SessionRun:
    session = MarketSession(spot_venue, SPOT_SPECS)
    run = SessionRun(frames={s.symbol: [] for s in SPOT_SPECS},
                     candles={s.symbol: [] for s in SPOT_SPECS})
    t0 = time.perf_counter()
    for result in session.seconds():
        run.seconds.append(result.ts)
        for symbol, frame in result.frames.items():
            run.frames[symbol].append(frame)
        for symbol, candle in result.candles.items():
            run.candles[symbol].append(candle)
        run.crossed_seconds += sum(book.is_crossed() for book in result.books.values())
        if result.ts == HAND_CHECKED_SECOND:
            run.books = {symbol: book.copy() for symbol, book in result.books.items()}
    run.elapsed_s = time.perf_counter() - t0
    run.stats = session.stats
    run.end_books = {s.symbol: session.synchronizer(s.symbol).book.copy() for s in SPOT_SPECS}
    run.end_books_equal_truth = {
        s.symbol: session.synchronizer(s.symbol).book == spot_venue.truth_book(s.symbol)
        for s in SPOT_SPECS}
    return run


@pytest.fixture(scope="session")
def recorded_line(data_dir: Path) -> Callable[[str, Callable[[bytes], bool]], bytes]:
    """``recorded_line(relative_path, predicate)``: the JSON part of the first matching line."""

    def find(relative: str, predicate: Callable[[bytes], bool]) -> bytes:
        with gzip.open(data_dir / "orderbook" / relative, "rb") as fh:
            for line in fh:
                payload = line.rstrip(b"\n").partition(b" ")[2]
                if predicate(payload):
                    return payload
        raise LookupError(f"no matching line in {relative}")

    return find
