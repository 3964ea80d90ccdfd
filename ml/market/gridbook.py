"""A price-grid order book in C (``native/cobgrid.c``), a drop-in for :class:`OrderBook`.

Layout: prices are integer ticks (``price = tick / 10**decimals``, ``decimals`` from the tick
size, e.g. 0.01 -> 2). Each side is a dense float64 array of sizes over a window of
``window_ticks`` ticks plus a bitmap of occupied ticks; best bid/ask are kept as tick indices
and, after deleting the best level, found again by scanning the bitmap (64 ticks per word).
Levels outside the window (far-away orders) sit in a small overflow list. When a COB frame's
bucket range would leave the window, the window is re-centred on the mid (every level is kept).

Floats are exact: a tick's price ``tick / 10**d`` is the same double as Python's ``float()`` of
its decimal string, so books, frames and the peer benchmark's Python code agree bit for bit.

Bad input: :meth:`GridBook.apply_levels` validates a whole update first and raises
:class:`InvalidLevels` (nothing applied) for a price that is not > 0, NaN, or not on the tick
grid, and for a negative, NaN or infinite size.
"""
from __future__ import annotations

import ctypes
import logging
import math
from collections.abc import Iterable
from itertools import chain
from typing import Literal

import numpy as np

from ml.market.errors import MarketDataError
from ml.market.events import Level, OrderBookSnapshot
from ml.market.native import lib

logger = logging.getLogger(__name__)

Side = Literal["bid", "ask"]
_SIDES = {"bid": 0, "ask": 1}
DEFAULT_WINDOW_TICKS = 1 << 18  # 262,144 ticks: $2,621 at a 0.01 tick
STAT_NAMES = ("applied", "dropped", "gaps", "crossed", "malformed", "rejected", "ignored", "level_updates",
              "frames", "frames_skipped", "recenters", "overflow_sets", "zero_levels_skipped", "snapshots")


class InvalidLevels(MarketDataError, ValueError):
    """An update holds levels that cannot be in a book (count and reason in the message)."""


def tick_decimals(tick_size: float) -> int:
    """Decimals of a tick size (0.01 -> 2, 0.1 -> 1, 1 -> 0). ValueError if not 10**-k, k in 0..15."""
    for d in range(16):
        if math.isclose(tick_size * 10**d, 1.0, rel_tol=1e-9):
            return d
    raise ValueError(f"tick_size must be a power of ten 1 .. 1e-15, got {tick_size!r}")


class GridBook:
    """Price-level book of one instrument on a tick grid (module docstring).

    Args:
        tick_size: price step in quote currency (0.01 for Binance spot BTCUSDT/ETHUSDT).
        window_ticks: ticks covered by the dense window (>= 1024; memory 2 x 8 bytes per tick).

    Same queries as :class:`ml.market.orderbook.OrderBook` (prices in quote currency, sizes in
    base units) plus :meth:`frame_buckets`. Raises MemoryError if the C allocation fails and
    ``NativeBuildError`` if the C engine cannot be built. Not thread-safe: one book per thread
    (ctypes releases the GIL during C calls).
    """

    __slots__ = ("_h", "_lib", "tick_size", "window_ticks")

    def __init__(self, tick_size: float = 0.01, window_ticks: int = DEFAULT_WINDOW_TICKS,
                 _handle: int | None = None) -> None:
        self._lib = lib()
        self.tick_size = tick_size
        self.window_ticks = window_ticks
        if _handle is None:
            _handle = self._lib.cg_new(tick_decimals(tick_size), window_ticks, 1.0, 0, 0, None, 0)
        if not _handle:
            raise MemoryError("cannot allocate the grid book")
        self._h = _handle

    def __del__(self) -> None:
        if getattr(self, "_h", None):
            self._lib.cg_free(self._h)
            self._h = None

    def clear(self) -> None:
        """Remove every level."""
        self._lib.cg_clear(self._h)

    def apply_snapshot(self, snapshot: OrderBookSnapshot) -> None:
        """Replace the whole book by ``snapshot``'s levels (size-0 levels are skipped); the window
        is centred between the best snapshot bid and ask. Raises InvalidLevels (book left empty)."""
        bids = [lv for lv in snapshot.bids if lv[1] != 0.0]
        asks = [lv for lv in snapshot.asks if lv[1] != 0.0]
        best_bid = max((p for p, _ in bids), default=None)
        best_ask = min((p for p, _ in asks), default=None)
        ref = [p for p in (best_bid, best_ask) if p is not None and p > 0 and math.isfinite(p)]
        center = round(sum(ref) / len(ref) / self.tick_size) if ref else 0
        self._lib.cg_begin_snapshot(self._h, center)
        try:
            self.apply_levels(bids, asks)
        except InvalidLevels:
            self._lib.cg_clear(self._h)
            raise

    def apply_levels(self, bids: Iterable[Level], asks: Iterable[Level]) -> int:
        """Set absolute sizes; size 0 deletes (deleting an absent level is a no-op). Returns the
        number of level updates applied. Raises InvalidLevels, applying nothing, if any level is bad.
        """
        bid_arr, ask_arr = _pairs(bids), _pairs(asks)
        bad = self._lib.cg_apply_update(self._h, bid_arr.ctypes.data, len(bid_arr) // 2,
                                        ask_arr.ctypes.data, len(ask_arr) // 2)
        if bad:
            raise InvalidLevels(f"{bad} level(s) with a price not > 0 / not on the {self.tick_size} tick grid, "
                                "or a negative / NaN size; update not applied")
        return (len(bid_arr) + len(ask_arr)) // 2

    def best_bid(self) -> float | None:
        """Highest bid price, or None if the bid side is empty."""
        p = self._lib.cg_best_price(self._h, 0)
        return None if p != p else p

    def best_ask(self) -> float | None:
        """Lowest ask price, or None if the ask side is empty."""
        p = self._lib.cg_best_price(self._h, 1)
        return None if p != p else p

    def mid(self) -> float | None:
        """``(best_bid + best_ask) / 2`` in quote currency, or None if a side is empty."""
        bid, ask = self.best_bid(), self.best_ask()
        return None if bid is None or ask is None else (bid + ask) / 2

    def spread(self) -> float | None:
        """``best_ask - best_bid`` in quote currency, or None if a side is empty."""
        bid, ask = self.best_bid(), self.best_ask()
        return None if bid is None or ask is None else ask - bid

    def is_crossed(self) -> bool:
        """True if best bid >= best ask (a locked book counts as crossed)."""
        return bool(self._lib.cg_is_crossed(self._h))

    def size(self, side: Side, price: float) -> float:
        """Size at ``price`` on ``side`` (0.0 if no level)."""
        return float(self._lib.cg_size(self._h, _side(side), price))

    def depth(self, side: Side) -> int:
        """Number of price levels on ``side``."""
        return int(self._lib.cg_depth(self._h, _side(side)))

    def level_arrays(self, side: Side, depth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Best-first prices and sizes, two float64 arrays of shape (k,), k <= ``depth``."""
        s = _side(side)
        total = int(self._lib.cg_depth(self._h, s))
        n = total if depth is None else max(0, min(depth, total))
        prices, sizes = np.empty(total), np.empty(total)
        n_overflow = ctypes.c_int64(0)
        k = self._lib.cg_levels(self._h, s, prices.ctypes.data, sizes.ctypes.data, total, ctypes.byref(n_overflow))
        prices, sizes = prices[:k], sizes[:k]
        if n_overflow.value:  # far levels come unsorted after the window's: sort the whole side
            order = np.argsort(-prices if s == 0 else prices, kind="stable")
            prices, sizes = prices[order], sizes[order]
        return prices[:n], sizes[:n]

    def levels(self, side: Side, depth: int | None = None) -> list[Level]:
        """``[(price, size), ...]`` best-first; the first ``depth`` levels, or all if None."""
        prices, sizes = self.level_arrays(side, depth)
        return list(zip(prices.tolist(), sizes.tolist(), strict=True))

    def prices_sizes_between(self, side: Side, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
        """Levels with ``low <= price < high``, best-first, as float64 arrays of shape (k,)."""
        prices, sizes = self.level_arrays(side)
        keep = (prices >= low) & (prices < high)
        return prices[keep], sizes[keep]

    def frame_buckets(self, bucket_width: float, n_buckets: int
                      ) -> tuple[np.ndarray, np.ndarray, float, float, float, float] | None:
        """USD per bucket around the mid (``ml.market.cob`` for the grid), computed in C.

        Returns ``(bid_usd, ask_usd, mid, best_bid, best_ask, first_bucket_price)`` with arrays of
        shape (2N+1,) float64, or None if a side is empty. Raises InvalidBookState if the book is
        crossed or the frame does not fit the window, ValueError on a bad width / N.
        """
        if not bucket_width > 0 or not 0 <= n_buckets <= 1024:
            raise ValueError(f"bucket_width must be > 0 and 0 <= n_buckets <= 1024, got {bucket_width!r}, {n_buckets!r}")
        bid_usd, ask_usd, meta = np.empty(2 * n_buckets + 1), np.empty(2 * n_buckets + 1), np.empty(4)
        r = self._lib.cg_frame_buckets(self._h, bucket_width, n_buckets, bid_usd.ctypes.data,
                                       ask_usd.ctypes.data, meta.ctypes.data)
        if r == 1:
            return None
        if r == 2:
            raise InvalidBookState("crossed book: no frame")
        if r != 0:
            raise InvalidBookState(f"a {2 * n_buckets + 1} x {bucket_width} frame does not fit a "
                                   f"{self.window_ticks}-tick window")
        return bid_usd, ask_usd, float(meta[0]), float(meta[1]), float(meta[2]), float(meta[3])

    @property
    def stats(self) -> dict[str, int]:
        """C-side counters (``STAT_NAMES``): rejected levels, re-centres, overflow writes..."""
        raw = self._lib.cg_stats(self._h)
        return {name: int(raw[i]) for i, name in enumerate(STAT_NAMES)}

    def copy(self) -> GridBook:
        """An independent copy."""
        return GridBook(self.tick_size, self.window_ticks, _handle=self._lib.cg_copy(self._h))

    def __eq__(self, other: object) -> bool:
        if not hasattr(other, "levels") or not hasattr(other, "depth"):
            return NotImplemented
        return all(dict(self.levels(s)) == dict(other.levels(s)) for s in ("bid", "ask"))

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return (f"GridBook(bid={self.best_bid()}, ask={self.best_ask()}, "
                f"levels={self.depth('bid')}/{self.depth('ask')})")


class InvalidBookState(MarketDataError):
    """The book cannot give a frame: crossed, or the frame is wider than the grid window."""


def _side(side: str) -> int:
    try:
        return _SIDES[side]
    except KeyError:
        raise ValueError(f"side must be 'bid' or 'ask', got {side!r}") from None


def _pairs(levels: Iterable[Level]) -> np.ndarray:
    """Flat float64 array ``[p0, q0, p1, q1, ...]`` of (price, size) pairs, shape (2k,)."""
    if not isinstance(levels, (list, tuple)):
        levels = list(levels)
    try:
        return np.fromiter(chain.from_iterable(levels), np.float64, 2 * len(levels))
    except (TypeError, ValueError) as exc:
        raise InvalidLevels(f"levels must be (price, size) pairs of numbers ({exc})") from None
