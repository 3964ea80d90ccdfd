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

A tape is written by the first (cold) run (:class:`TapeWriter`) and read by later (warm) runs in
the same process (memory) or another one (``cache_dir``; written by this module only, as the
replay cache). It covers the seconds up to ``covered_to_ms`` (the end of a truncated run, or the
whole session); a run that ends later records it again.

File (``tape-<key>.pickle``): a 256-byte header (``GOGOTAPE`` and JSON: key, covered_to_ms, bytes,
seconds; written last, so a file being written is never taken for a whole one), then pickled
segments of :data:`SEGMENT_SECONDS` seconds each. Size: ~10 KB per second on disk (~0.9 GB for a
day), ~7 KB in memory (the 200-level snapshot). A tape of at most :data:`MAX_SECONDS` seconds is
kept in memory (one per process) and loaded whole; a longer one (a day-long recording) is
streamed from the file a segment at a time, so memory stays flat however long the session. A new
tape deletes the tapes of the same recording and settings made by older code (:func:`tape_key`).
"""
from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from ml.backtest.batch import FrozenBook
from ml.market.events import reduce_positional

logger = logging.getLogger(__name__)

FORMAT = 2
MAX_SECONDS = 14_400  # 4 h of seconds: ~100 MB of snapshots in memory; longer tapes stream from disk
SEGMENT_SECONDS = 512
_MAGIC = b"GOGOTAPE"
_HEADER_BYTES = 256
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
        return _covers(self.covered_to_ms, end_ms)

    def replay(self, end_ms: int | None) -> Iterator[TapeSecond]:
        """The stored seconds with ts <= ``end_ms`` (all when None), in order."""
        return _until(self.seconds, end_ms)


def _covers(covered_to_ms: int | None, end_ms: int | None) -> bool:
    """Whether a tape covering the seconds up to ``covered_to_ms`` (None: all) holds a run to ``end_ms``."""
    return covered_to_ms is None or (end_ms is not None and end_ms <= covered_to_ms)


def _until(seconds: Iterable[TapeSecond], end_ms: int | None) -> Iterator[TapeSecond]:
    """``seconds`` (in order) with ts <= ``end_ms`` (all when None)."""
    for second in seconds:
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
    """``<family>-<code>``, short hashes of everything a tape depends on. The family: the recordings
    (``replay_cache._key``: paths, sizes, mtimes), the instrument specs (bucket width and count, sync
    rule, tick size), the traded symbol, the snapshot depth and the session's close delay. The code:
    the source of the market step (``_SOURCES``: a changed order book, synchronizer or COB engine
    records the tape again, and the new tape deletes the family's old ones: a day's tape is ~0.9 GB)."""
    family = repr((FORMAT, replay_key, [repr(s) for s in specs], traded, depth, close_delay_ms))
    return f"{hashlib.sha256(family.encode()).hexdigest()[:16]}-{_code_digest()[:16]}"


def tape_get(key: str, end_ms: int | None, cache_dir: Path | None) -> MarketTape | DiskTape | None:
    """The stored tape under ``key`` if it covers the seconds up to ``end_ms``: from memory, else
    from ``cache_dir`` (loaded whole and kept in memory up to MAX_SECONDS seconds, else a
    :class:`DiskTape` that streams the file); None otherwise (also for an unreadable file, logged)."""
    tape = _MEMO.get(key)
    if tape is not None and tape.covers(end_ms):
        return tape
    if cache_dir is None:
        return None
    path = Path(cache_dir) / f"tape-{key}.pickle"
    try:
        header = _read_header(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("market tape %s unreadable (%s); replaying the recordings", path, exc)
        return None
    disk = DiskTape(key=header["key"], covered_to_ms=header["covered_to_ms"], path=path, n_seconds=header["seconds"])
    if disk.key != key or not disk.covers(end_ms):
        return None
    if path.stat().st_size != header["bytes"]:
        logger.warning("market tape %s has %d bytes, its header says %d; replaying the recordings", path,
                       path.stat().st_size, header["bytes"])
        return None
    if disk.n_seconds > MAX_SECONDS:
        return disk
    try:
        tape = MarketTape(key, disk.covered_to_ms, list(chain.from_iterable(disk.segments())))
    except Exception as exc:  # noqa: BLE001 - a stale or damaged tape is recorded again
        logger.warning("market tape %s unreadable (%s); replaying the recordings", path, exc)
        return None
    _MEMO.clear()
    _MEMO[key] = tape
    return tape


class TapeError(RuntimeError):
    """A stored tape turned out damaged while it was being streamed."""


@dataclass
class DiskTape:
    """A stored tape read from its file a segment at a time (module docstring: File)."""

    key: str
    covered_to_ms: int | None
    path: Path
    n_seconds: int

    def covers(self, end_ms: int | None) -> bool:
        return _covers(self.covered_to_ms, end_ms)

    def segments(self) -> Iterator[list[TapeSecond]]:
        """The file's segments in order. Raises TapeError if a segment cannot be read (the file
        is deleted first, so the next run records the tape again)."""
        seen = 0
        with self.path.open("rb") as fh:
            fh.seek(_HEADER_BYTES)
            while seen < self.n_seconds:
                enabled = gc.isenabled()
                gc.disable()  # many small objects: generation scans would double the load time
                try:
                    segment = pickle.load(fh)  # noqa: S301 - our own cache file (module docstring)
                except Exception as exc:  # noqa: BLE001 - whatever a damaged pickle raises
                    self.path.unlink(missing_ok=True)
                    raise TapeError(f"market tape {self.path} is damaged after {seen} of {self.n_seconds} seconds "
                                    f"({type(exc).__name__}: {exc}); deleted: the next run replays the recordings") from exc
                finally:
                    if enabled:
                        gc.enable()
                seen += len(segment)
                yield segment

    def replay(self, end_ms: int | None) -> Iterator[TapeSecond]:
        """The stored seconds with ts <= ``end_ms`` (all when None), in order."""
        return _until(chain.from_iterable(self.segments()), end_ms)


def _read_header(path: Path) -> dict:
    """The header of a tape file; ValueError if it is not one (another format, a partial write)."""
    with path.open("rb") as fh:
        raw = fh.read(_HEADER_BYTES)
    if len(raw) != _HEADER_BYTES or not raw.startswith(_MAGIC):
        raise ValueError("not a market tape of this format")
    header = json.loads(raw[len(_MAGIC):])
    if header.get("format") != FORMAT:
        raise ValueError(f"tape format {header.get('format')}, expected {FORMAT}")
    return header


class TapeWriter:
    """Records a tape as the cold run replays the recordings: :meth:`append` each second in order,
    then :meth:`finish` (the file is renamed into place, the tape kept in memory if it is short) or
    :meth:`abort` (nothing is kept). Without ``cache_dir`` only the memory copy is made."""

    def __init__(self, key: str, covered_to_ms: int | None, cache_dir: Path | None) -> None:
        self.key, self.covered_to_ms, self.count = key, covered_to_ms, 0
        self._memory: list[TapeSecond] | None = []
        self._segment: list[TapeSecond] = []
        self._path = self._tmp = self._fh = None
        if cache_dir is not None:
            self._path = Path(cache_dir) / f"tape-{key}.pickle"
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = self._path.with_suffix(f".{os.getpid()}.tmp")
            self._fh = self._tmp.open("wb")
            self._fh.write(b" " * _HEADER_BYTES)  # the header comes last (finish)

    def append(self, second: TapeSecond) -> None:
        self.count += 1
        if self._memory is not None:
            if self.count <= MAX_SECONDS:
                self._memory.append(second)
            else:
                self._memory = None  # too long to keep: the file is streamed instead
        if self._fh is not None:
            self._segment.append(second)
            if len(self._segment) >= SEGMENT_SECONDS:
                try:
                    self._flush()
                except OSError as exc:  # a full disk costs the next run its warm start, not this run
                    self._drop_file(exc)

    def finish(self, complete: bool) -> None:
        """Store the tape: the whole session if ``complete``, else the seconds up to ``covered_to_ms``.
        A file that cannot be written (OSError: disk full, permissions) is logged and left out."""
        covered = None if complete else self.covered_to_ms
        try:
            self._store_file(covered)
        except OSError as exc:
            self._drop_file(exc)
        _MEMO.clear()
        if self._memory is not None:
            _MEMO[self.key] = MarketTape(self.key, covered, self._memory)

    def _store_file(self, covered: int | None) -> None:
        if self._fh is not None:
            self._flush()
            size = self._fh.tell()
            header = json.dumps({"format": FORMAT, "key": self.key, "covered_to_ms": covered,
                                 "seconds": self.count, "bytes": size}).encode()
            if len(_MAGIC) + len(header) > _HEADER_BYTES:
                raise ValueError(f"tape header too long: {header!r}")
            self._fh.seek(0)
            self._fh.write((_MAGIC + header).ljust(_HEADER_BYTES))
            self._fh.close()
            self._fh = None
            self._tmp.replace(self._path)  # a concurrent reader sees the old file or the whole new one
            family = self.key.split("-")[0]
            for old in self._path.parent.glob(f"tape-{family}-*.pickle"):
                if old != self._path:  # the same data under older code: never read again
                    old.unlink(missing_ok=True)

    def abort(self) -> None:
        """Keep nothing (the run stopped before its end)."""
        self._discard_file()
        self._memory = None

    def _drop_file(self, exc: OSError) -> None:
        logger.warning("market tape %s not stored (%s); the next run replays the recordings", self._path, exc)
        self._discard_file()
        self._segment = []

    def _discard_file(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None
            self._tmp.unlink(missing_ok=True)

    def _flush(self) -> None:
        if self._segment:
            pickle.dump(self._segment, self._fh, protocol=pickle.HIGHEST_PROTOCOL)
            self._segment = []
