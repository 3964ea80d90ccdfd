"""Parsed recordings for repeated backtests: a ``ReplayVenue`` loaded once per process and kept
on disk, so a backtest (and each of the look-ahead check's truncated re-runs) does not parse the
same gzip JSON streams again.

Reading the 2024-08-08/09 spot session (~180,000 lines) takes ~3.8 s; unpickling the parsed
events ~0.3-0.7 s; the in-process copy ~0 s (measured on the shared 2-core machine). Every venue
handed out is ``ReplayVenue.with_drops({})``: the events are shared read-only, the truth books and
counts are its own, so runs cannot disturb each other.

The key is each file's path, size and modification time (ns) plus ``FORMAT``; a changed
recording or a cache that no longer unpickles (event classes changed) is parsed again. The
cache files are written by this module only (pickle: never point ``cache_dir`` at files from
elsewhere).
"""
from __future__ import annotations

import gc
import hashlib
import logging
import os
import pickle
from pathlib import Path

from ml.market.replay import ReplayVenue

logger = logging.getLogger(__name__)

FORMAT = 1
_MEMO: dict[tuple, ReplayVenue] = {}


def _key(recordings: dict[str, list[Path]]) -> tuple:
    """Raises OSError naming a missing file."""
    return (FORMAT, *((symbol, *((str(p), os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths))
                      for symbol, paths in recordings.items()))


class LazyReplayVenue:
    """A ``ReplayVenue`` loaded (:func:`replay_venue_load`) on first use: a fast backtest that reads
    its market tape (``ml.backtest.market_tape``) never touches the events, so it skips the
    0.3-0.7 s unpickling. Same queries as ``ReplayVenue`` (events, snapshot, truth_book, symbols,
    counts, with_drops); ``cache_key`` is the recordings' key (``_key``), which the tape is keyed on.
    Raises OSError (on first use) if a file cannot be read."""

    def __init__(self, recordings: dict[str, list[Path]], cache_dir: Path | None) -> None:
        self.cache_key = _key(recordings)
        self._recordings, self._cache_dir, self._venue = recordings, cache_dir, None

    @property
    def loaded(self) -> ReplayVenue:
        if self._venue is None:
            self._venue = replay_venue_load(self._recordings, self._cache_dir)
        return self._venue

    @property
    def symbols(self) -> list[str]:
        return [s.upper() for s in self._recordings]

    @property
    def counts(self):
        return self.loaded.counts

    def events(self):
        return self.loaded.events()

    def snapshot(self, symbol: str):
        return self.loaded.snapshot(symbol)

    def truth_book(self, symbol: str):
        return self.loaded.truth_book(symbol)

    def with_drops(self, drop_deltas: dict[str, set[int]]) -> ReplayVenue:
        return self.loaded.with_drops(drop_deltas)


def replay_venue(recordings: dict[str, list[Path]], cache_dir: Path | None = None) -> LazyReplayVenue:
    """A fresh venue over ``recordings`` ({symbol: ordered gz paths}), loaded on first use
    (:class:`LazyReplayVenue`, :func:`replay_venue_load`). Raises OSError naming a missing file."""
    return LazyReplayVenue(recordings, cache_dir)


def replay_venue_load(recordings: dict[str, list[Path]], cache_dir: Path | None = None) -> ReplayVenue:
    """A fresh ``ReplayVenue`` over ``recordings`` ({symbol: ordered gz paths}), from memory, then
    ``cache_dir`` (when given), then parsed (and stored there). Raises OSError if a file cannot be read."""
    key = _key(recordings)
    base = _MEMO.get(key)
    path = Path(cache_dir) / f"replay-{hashlib.sha256(repr(key).encode()).hexdigest()[:24]}.pickle" if cache_dir else None
    if base is None and path is not None and path.exists():
        enabled = gc.isenabled()
        gc.disable()  # ~180,000 new objects: generation scans would double the load time
        try:
            with path.open("rb") as fh:
                base = pickle.load(fh)  # noqa: S301 - our own cache file (module docstring)
        except Exception as exc:  # noqa: BLE001 - a stale cache is parsed again
            logger.warning("replay cache %s unreadable (%s); parsing the recordings", path, exc)
            base = None
        finally:
            if enabled:
                gc.enable()
    if base is None:
        base = ReplayVenue(recordings)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as fh:
                pickle.dump(base, fh, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(path)  # atomic: a concurrent reader sees the old file or the whole new one
    _MEMO.clear()  # one session in memory (~100 MB of events)
    _MEMO[key] = base
    return base.with_drops({})
