"""The fast COB pipeline: raw Binance depth messages -> parse -> sequence check -> apply ->
per-second frames and moving averages, all in C (``native/cobgrid.c``) over a :class:`GridBook`
layout, one call per batch of messages.

Semantics (the same as ``MarketSession`` + ``ml.market.cob``, checked in tests):

- parsing: combined-stream wrappers or bare ``depthUpdate`` payloads; prices must be decimal
  strings on the tick grid, sizes non-negative decimal strings. A message with a bad level
  (negative, NaN, empty, off-tick, > 18 digits) is rejected whole and counted (``rejected``); a
  message that is not JSON the parser understands is counted ``malformed``; either way nothing of
  it is applied, so the next delta breaks the ``U``/``u`` chain and the book is resynced.
- sync: the Binance rules of ``ml.market.sync`` (spot ``U``/``u``; futures ``pu``); a gap or a
  crossed book is counted (``gaps``, ``crossed``), the book is marked unsynced and a snapshot is
  fetched from ``snapshot_source`` (the message that failed is replayed against it).
- frames: ``mode="session"``: second ``[t, t + 1000)`` is closed (its frame taken) when the first
  message with ``E >= t + 1000`` arrives, before it is applied; every second with a synced,
  uncrossed, two-sided book gets a frame (others count ``frames_skipped``). ``mode="peer"``:
  a frame after applying a delta whose ``E`` second differs from the previous applied delta's,
  as ``shared/bench/peer_orderbook.py`` does (used for the equality check against the peers).
- buckets: ``ml.market.cob`` (same floats bit for bit); ``imbalance``, ``imbalance_5``, MAs of
  ``imbalance_5`` over the last n frames, and per-bucket MAs matched by absolute price bucket
  (:class:`ml.market.cob.BucketImbalanceMA` documents the rule).
"""
from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ml.market.errors import MarketDataError
from ml.market.events import CobFrame, OrderBookSnapshot
from ml.market.gridbook import DEFAULT_WINDOW_TICKS, STAT_NAMES, tick_decimals
from ml.market.native import lib

logger = logging.getLogger(__name__)

ST_APPLIED, ST_DROPPED, ST_GAP, ST_CROSSED, ST_MALFORMED, ST_REJECTED, ST_IGNORED, ST_UNSYNCED, ST_SNAPSHOT = range(9)
MA_WINDOWS = (1, 5, 15, 60)
MAX_RESYNC_ATTEMPTS = 3  # snapshots in a row that do not let the stream go on: stop the run
SnapshotSource = Callable[[str], "bytes | OrderBookSnapshot"]


@dataclass(slots=True)
class FrameBatch:
    """Frames of one :meth:`FastCobEngine.run` call; F frames, B = 2N + 1 buckets, W windows.

    ``ts`` (F,) int64 ms; ``mid``, ``best_bid``, ``best_ask``, ``first_bucket_price``,
    ``imbalance_5`` (F,) float64 (USD / ratio); ``bid_usd``, ``ask_usd``, ``imbalance`` (F, B);
    ``imbalance_ma`` (F, W) means of ``imbalance_5``; ``bucket_imbalance_ma`` (F, W, B).
    """

    symbol: str
    bucket_width: float
    n_buckets: int
    windows: tuple[int, ...]
    ts: np.ndarray
    mid: np.ndarray
    best_bid: np.ndarray
    best_ask: np.ndarray
    first_bucket_price: np.ndarray
    imbalance_5: np.ndarray
    imbalance_ma: np.ndarray
    bid_usd: np.ndarray
    ask_usd: np.ndarray
    imbalance: np.ndarray
    bucket_imbalance_ma: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def frame(self, k: int) -> CobFrame:
        """Frame ``k`` as a :class:`CobFrame` (arrays are copies)."""
        keys = [f"{n}s" for n in self.windows]
        return CobFrame(
            symbol=self.symbol, ts=int(self.ts[k]), mid=float(self.mid[k]), best_bid=float(self.best_bid[k]),
            best_ask=float(self.best_ask[k]), bucket_width=self.bucket_width, n_buckets=self.n_buckets,
            first_bucket_price=float(self.first_bucket_price[k]), bid_usd=self.bid_usd[k].copy(),
            ask_usd=self.ask_usd[k].copy(), imbalance=self.imbalance[k].copy(),
            imbalance_5=float(self.imbalance_5[k]),
            imbalance_ma={key: float(v) for key, v in zip(keys, self.imbalance_ma[k], strict=True)},
            bucket_imbalance_ma={key: self.bucket_imbalance_ma[k, i].copy() for i, key in enumerate(keys)},
        )


class FastCobEngine:
    """One instrument's book, sync state and frame history in C (module docstring).

    Args:
        symbol: instrument ("BTCUSDT"); passed to ``snapshot_source``.
        bucket_width: USD per bucket (> 0); n_buckets: N (frames have 2N + 1 buckets).
        tick_size: price step (a power of ten, 0.01 for Binance spot BTC/ETH).
        rule: "spot" or "futures" (``ml.market.sync``).
        windows: MA windows in seconds (1..3600, at most 8).
        snapshot_source: returns a REST snapshot (raw JSON bytes or an ``OrderBookSnapshot``)
            for a resync; without it :meth:`run` stops at a gap and returns what it has.

    Raises ValueError on a bad argument, MemoryError if the C allocation fails, NativeBuildError
    if the C engine cannot be built. Not thread-safe: one engine per thread.
    """

    def __init__(self, symbol: str, bucket_width: float, n_buckets: int = 20, tick_size: float = 0.01,
                 rule: str = "spot", windows: Sequence[int] = MA_WINDOWS,
                 snapshot_source: SnapshotSource | None = None, window_ticks: int = DEFAULT_WINDOW_TICKS) -> None:
        if rule not in ("spot", "futures"):
            raise ValueError(f"rule must be 'spot' or 'futures', got {rule!r}")
        if not bucket_width > 0 or not 0 <= n_buckets <= 1024:
            raise ValueError(f"bucket_width must be > 0 and 0 <= n_buckets <= 1024, got {bucket_width!r}, {n_buckets!r}")
        if not windows or len(windows) > 8 or min(windows) < 1 or max(windows) > 3600:
            raise ValueError(f"windows must be 1..8 integers in 1..3600, got {windows!r}")
        self._lib = lib()
        self.symbol = symbol.upper()
        self.bucket_width = float(bucket_width)
        self.n_buckets = n_buckets
        self.windows = tuple(int(w) for w in windows)
        self.tick_size = tick_size
        self.snapshot_source = snapshot_source
        w_arr = (ctypes.c_int * len(self.windows))(*self.windows)
        self._h = self._lib.cg_new(tick_decimals(tick_size), window_ticks, self.bucket_width, n_buckets,
                                   0 if rule == "spot" else 1, w_arr, len(self.windows))
        if not self._h:
            raise MemoryError("cannot allocate the C book")
        self._cur_sec = ctypes.c_int64(-1)
        self.resyncs = 0

    def __del__(self) -> None:
        if getattr(self, "_h", None):
            self._lib.cg_free(self._h)
            self._h = None

    @property
    def synced(self) -> bool:
        """True while the book follows the venue (after a snapshot, before any gap)."""
        return bool(self._lib.cg_synced(self._h))

    @property
    def stats(self) -> dict[str, int]:
        """Counters: applied, dropped, gaps, crossed, malformed, rejected, ignored, level_updates,
        frames, frames_skipped, recenters, overflow_sets, zero_levels_skipped, snapshots; resyncs."""
        raw = self._lib.cg_stats(self._h)
        return {**{name: int(raw[i]) for i, name in enumerate(STAT_NAMES)}, "resyncs": self.resyncs}

    def best_bid_ask(self) -> tuple[float | None, float | None]:
        """Current best bid and ask (quote currency), None for an empty side."""
        bid, ask = self._lib.cg_best_price(self._h, 0), self._lib.cg_best_price(self._h, 1)
        return (None if bid != bid else bid), (None if ask != ask else ask)

    def load_snapshot(self, snapshot: bytes | OrderBookSnapshot) -> bool:
        """Replace the book by a REST snapshot (raw JSON or parsed); returns True if synced.

        Size-0 levels are skipped (counted ``zero_levels_skipped`` for raw snapshots); a crossed
        snapshot leaves the book unsynced. Raises MarketDataError for a snapshot whose JSON or
        levels are invalid (nothing kept).
        """
        if isinstance(snapshot, OrderBookSnapshot):
            return self._load_parsed(snapshot)
        st = self._lib.cg_feed(self._h, snapshot, len(snapshot))
        if st not in (ST_SNAPSHOT, ST_CROSSED):
            self._lib.cg_clear(self._h)
            raise MarketDataError(f"{self.symbol}: invalid snapshot (status {st})")
        return st == ST_SNAPSHOT

    def _load_parsed(self, snapshot: OrderBookSnapshot) -> bool:
        bids = np.array([lv for lv in snapshot.bids if lv[1] != 0.0] or np.empty((0, 2)), dtype=np.float64)
        asks = np.array([lv for lv in snapshot.asks if lv[1] != 0.0] or np.empty((0, 2)), dtype=np.float64)
        ref = [a[0, 0] for a in (bids[np.argsort(-bids[:, 0])] if len(bids) else bids,
                                  asks[np.argsort(asks[:, 0])] if len(asks) else asks) if len(a)]
        self._lib.cg_begin_snapshot(self._h, round(sum(ref) / len(ref) / self.tick_size) if ref else 0)
        for side, arr in ((0, bids), (1, asks)):
            if len(arr) and self._lib.cg_set_levels(self._h, side, np.ascontiguousarray(arr).ctypes.data, len(arr)):
                self._lib.cg_clear(self._h)
                raise MarketDataError(f"{self.symbol}: snapshot {snapshot.last_update_id} has invalid levels")
        self._lib.cg_set_synced(self._h, snapshot.last_update_id)
        return self.synced

    def run(self, messages: Sequence[bytes], mode: str = "session", frames: bool = True) -> FrameBatch:
        """Process raw depth messages in order (module docstring); returns the frames taken.

        Raises ValueError for an unknown ``mode``; MarketDataError if a resync snapshot is invalid.
        Without a ``snapshot_source`` a gap stops the run: the frames so far are returned, the
        rest of the messages are not processed (``stats['gaps']`` tells); likewise after
        ``MAX_RESYNC_ATTEMPTS`` snapshots in a row that do not continue the stream.
        """
        if mode not in ("session", "peer"):
            raise ValueError(f"mode must be 'session' or 'peer', got {mode!r}")
        buf = b"".join(messages)
        offsets = np.zeros(len(messages) + 1, dtype=np.int64)
        np.cumsum([len(m) for m in messages], out=offsets[1:])
        return self._run(buf, offsets, 0 if mode == "session" else 1, frames)

    def _run(self, buf: bytes, offsets: np.ndarray, mode: int, frames: bool) -> FrameBatch:
        n = len(offsets) - 1
        nb, nw = 2 * self.n_buckets + 1, len(self.windows)
        out = _Out(n // 8 + 64 if frames else 1, nb, nw)  # ~10 messages a second; grown if needed
        n_frames, status = ctypes.c_int64(0), ctypes.c_int(0)
        start, stuck = 0, 0
        while start < n:
            before = start
            start += self._lib.cg_run(self._h, buf, offsets[start:].ctypes.data, n - start, mode, int(frames),
                                      ctypes.byref(self._cur_sec), out.cap, ctypes.byref(n_frames), *out.pointers(),
                                      ctypes.byref(status))
            if status.value == -1:  # more seconds than room: grow and go on
                out.grow()
            elif status.value in (ST_GAP, ST_UNSYNCED, ST_CROSSED):
                stuck = stuck + 1 if start == before else 0
                if stuck > MAX_RESYNC_ATTEMPTS or not self._resync():
                    logger.warning("%s: gap not resolved (snapshot source missing or stale); %d messages left",
                                   self.symbol, n - start)
                    break
        k = n_frames.value
        meta = out.meta[:k]
        return FrameBatch(self.symbol, self.bucket_width, self.n_buckets, self.windows, out.ts[:k].copy(),
                          meta[:, 0].copy(), meta[:, 1].copy(), meta[:, 2].copy(), meta[:, 3].copy(),
                          meta[:, 4].copy(), meta[:, 5:].copy(), out.bid[:k].copy(), out.ask[:k].copy(),
                          out.imb[:k].copy(), out.bma[:k].copy())

    def _resync(self) -> bool:
        if self.snapshot_source is None:
            return False
        logger.warning("%s: sequence gap; resyncing from a snapshot", self.symbol)
        self.load_snapshot(self.snapshot_source(self.symbol))
        self.resyncs += 1
        return True


class _Out:
    """Output arrays the C loop writes frames into (grown on demand)."""

    def __init__(self, cap: int, nb: int, nw: int) -> None:
        self.cap = max(16, cap)
        self.ts = np.zeros(self.cap, dtype=np.int64)
        self.meta = np.zeros((self.cap, 5 + nw))
        self.bid, self.ask, self.imb = (np.zeros((self.cap, nb)) for _ in range(3))
        self.bma = np.zeros((self.cap, nw, nb))

    def pointers(self) -> tuple[int, ...]:
        return (self.ts.ctypes.data, self.meta.ctypes.data, self.bid.ctypes.data, self.ask.ctypes.data,
                self.imb.ctypes.data, self.bma.ctypes.data)

    def grow(self) -> None:
        self.cap *= 2
        for name in ("ts", "meta", "bid", "ask", "imb", "bma"):
            old = getattr(self, name)
            new = np.zeros((self.cap, *old.shape[1:]), dtype=old.dtype)
            new[:len(old)] = old
            setattr(self, name, new)
