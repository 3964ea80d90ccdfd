"""The market step's output per exchange second, recorded once per recording and replayed by the
backtest's fast path (``apps.backtest.fast``) instead of re-running the order-book replay.

What a fast backtest reads from a ``MarketSession`` second is a pure function of the recordings
and the instrument specs (the session applies the recorded events in order; no database, clock or
model is involved), so it can be stored like the parsed recordings (``ml.backtest.replay_cache``):
a backtest over stored COB frames, 1 s candles and book snapshots is a backtest over the same data.

Per second (:class:`TapeSecond`): every instrument's 1 s candle, COB frame (scalar imbalance MA
applied, per-bucket MAs not, as the fast path runs them) and stream gap; the traded instrument's
trades and its book's first ``depth`` levels and touch (``ml.backtest.batch.FrozenBook``); each
synchronizer's cumulative sequence-gap count (the engine records a DataGap when it grows).

A tape is written by the first (cold) run and read by later (warm) runs in the same process
(memory) or another one (``cache_dir``, pickle; written by this module only, as the replay cache).
It covers the seconds up to ``covered_to_ms`` (the end of a truncated run, or the whole session);
a run that ends later records it again. Memory: ~7 KB per second (the 200-level snapshot), so a
session longer than :data:`MAX_SECONDS` is not taped (the fast path then replays the recordings).
"""
from __future__ import annotations

import gc
import hashlib
import logging
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ml.backtest.batch import FrozenBook
from ml.market.events import reduce_positional

logger = logging.getLogger(__name__)

FORMAT = 1
MAX_SECONDS = 14_400  # 4 h of seconds: ~100 MB of snapshots in memory
_MEMO: dict[str, MarketTape] = {}


@dataclass(slots=True)
class TapeSecond:
    """One closed exchange second ``[ts, ts + 1000)`` (ms) as the fast path reads it (module docstring)."""

    ts: int
    candles: dict
    frames: dict
    gaps: dict
    trades: tuple  # the traded symbol's prints in the second, in order
    book: FrozenBook | None  # the traded symbol's book at the close (None: not synced)
    sync_gaps: dict[str, int]  # symbol -> synchronizer gaps so far

    __reduce__ = reduce_positional  # loads faster than the slots dataclass default


@dataclass
class MarketTape:
    """The seconds of one recording with ts <= ``covered_to_ms`` (None: the whole session)."""

    key: str
    covered_to_ms: int | None
    seconds: list[TapeSecond] = field(default_factory=list)

    def covers(self, end_ms: int | None) -> bool:
        return self.covered_to_ms is None or (end_ms is not None and end_ms <= self.covered_to_ms)

    def replay(self, end_ms: int | None) -> Iterator[TapeSecond]:
        """The stored seconds with ts <= ``end_ms`` (all when None), in order."""
        for second in self.seconds:
            if end_ms is not None and second.ts > end_ms:
                return
            yield second


# The market step's code: a tape made by other code is made again.
_SOURCES = ("ml/market/session.py", "ml/market/sync.py", "ml/market/gridbook.py", "ml/market/orderbook.py",
            "ml/market/cob.py", "ml/market/cob_fast.py", "ml/market/candles.py", "ml/market/events.py",
            "ml/market/replay.py", "ml/market/binance.py", "ml/backtest/batch.py", "ml/backtest/market_tape.py")


def _code_digest() -> str:
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for name in _SOURCES:
        path = root / name
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()


def tape_key(replay_key: tuple, specs: list, traded: str, depth: int, close_delay_ms: int) -> str:
    """A short hash of everything a tape depends on: the recordings (``replay_cache._key``: paths,
    sizes, mtimes), the instrument specs (bucket width and count, sync rule, tick size), the traded
    symbol, the snapshot depth, the session's close delay and the source of the market step
    (``_SOURCES``: a changed order book, synchronizer or COB engine records the tape again)."""
    text = repr((FORMAT, replay_key, [repr(s) for s in specs], traded, depth, close_delay_ms, _code_digest()))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def tape_get(key: str, end_ms: int | None, cache_dir: Path | None) -> MarketTape | None:
    """The stored tape under ``key`` if it covers the seconds up to ``end_ms``, from memory, then
    ``cache_dir``; None otherwise (also for an unreadable file, logged)."""
    tape = _MEMO.get(key)
    if tape is None and cache_dir is not None:
        path = Path(cache_dir) / f"tape-{key}.pickle"
        if path.exists():
            enabled = gc.isenabled()
            gc.disable()  # many small objects: generation scans would double the load time
            try:
                with path.open("rb") as fh:
                    tape = pickle.load(fh)  # noqa: S301 - our own cache file (module docstring)
            except Exception as exc:  # noqa: BLE001 - a stale tape is recorded again
                logger.warning("market tape %s unreadable (%s); replaying the recordings", path, exc)
                tape = None
            finally:
                if enabled:
                    gc.enable()
            if tape is not None:
                _MEMO.clear()
                _MEMO[key] = tape
    return tape if tape is not None and tape.key == key and tape.covers(end_ms) else None


def tape_put(tape: MarketTape, cache_dir: Path | None) -> None:
    """Keep ``tape`` in memory (one tape per process) and in ``cache_dir`` (atomic replace)."""
    _MEMO.clear()
    _MEMO[tape.key] = tape
    if cache_dir is None:
        return
    path = Path(cache_dir) / f"tape-{tape.key}.pickle"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        pickle.dump(tape, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)  # a concurrent reader sees the old file or the whole new one
