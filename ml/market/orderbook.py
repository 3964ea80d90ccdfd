"""A local L2 order book: price -> size per side, plus a sorted price index.

Each side is a dict ``price -> size`` (quote currency, base units; floats parsed from the venue's
decimal strings, so the same string always maps to the same key) and an ascending list of its
prices kept sorted with ``bisect``. A size update on an existing level touches only the dict; a
new or deleted level costs one binary search and one list insert/delete (a memmove of at most a
few thousand pointers). Best prices are the list ends, so ``best_bid``/``best_ask`` are O(1) and
the book is never re-sorted. The reference book (the replay venue's truth book, and the fallback
when the C engine cannot be built); sessions use the C price grid, ``ml.market.gridbook.GridBook``.
"""
from __future__ import annotations

import logging
from bisect import bisect_left, insort
from collections.abc import Iterable
from typing import Literal

import numpy as np

from ml.market.events import Level, OrderBookSnapshot

logger = logging.getLogger(__name__)

Side = Literal["bid", "ask"]


class OrderBook:
    """Price-level book of one instrument (prices in quote currency, sizes in base units)."""

    __slots__ = ("_ask_prices", "_asks", "_bid_prices", "_bids")

    def __init__(self) -> None:
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        self._bid_prices: list[float] = []  # ascending; best bid last
        self._ask_prices: list[float] = []  # ascending; best ask first

    def clear(self) -> None:
        """Remove every level."""
        self._bids.clear()
        self._asks.clear()
        self._bid_prices.clear()
        self._ask_prices.clear()

    def apply_snapshot(self, snapshot: OrderBookSnapshot) -> None:
        """Replace the whole book by ``snapshot``'s levels (size-0 levels are skipped)."""
        self.clear()
        self._bids.update((p, q) for p, q in snapshot.bids if q != 0.0)
        self._asks.update((p, q) for p, q in snapshot.asks if q != 0.0)
        self._bid_prices.extend(sorted(self._bids))
        self._ask_prices.extend(sorted(self._asks))

    def apply_levels(self, bids: Iterable[Level], asks: Iterable[Level]) -> int:
        """Set absolute sizes; size 0 deletes the level (deleting an absent level is a no-op,
        which Binance documents as normal). Returns the number of level updates applied.
        """
        n = _apply_side(self._bids, self._bid_prices, bids)
        return n + _apply_side(self._asks, self._ask_prices, asks)

    def best_bid(self) -> float | None:
        """Highest bid price, or None if the bid side is empty."""
        return self._bid_prices[-1] if self._bid_prices else None

    def best_ask(self) -> float | None:
        """Lowest ask price, or None if the ask side is empty."""
        return self._ask_prices[0] if self._ask_prices else None

    def mid(self) -> float | None:
        """``(best_bid + best_ask) / 2`` in quote currency, or None if a side is empty."""
        if not self._bid_prices or not self._ask_prices:
            return None
        return (self._bid_prices[-1] + self._ask_prices[0]) / 2

    def spread(self) -> float | None:
        """``best_ask - best_bid`` in quote currency, or None if a side is empty."""
        if not self._bid_prices or not self._ask_prices:
            return None
        return self._ask_prices[0] - self._bid_prices[-1]

    def is_crossed(self) -> bool:
        """True if best bid >= best ask (a locked book counts as crossed)."""
        return bool(self._bid_prices and self._ask_prices
                    and self._bid_prices[-1] >= self._ask_prices[0])

    def size(self, side: Side, price: float) -> float:
        """Size at ``price`` on ``side`` (0.0 if no level)."""
        return self._side(side)[0].get(price, 0.0)

    def depth(self, side: Side) -> int:
        """Number of price levels on ``side``."""
        return len(self._side(side)[1])

    def levels(self, side: Side, depth: int | None = None) -> list[Level]:
        """``[(price, size), ...]`` best-first (bids descending, asks ascending); the first
        ``depth`` levels, or all of them if ``depth`` is None. Raises ValueError on a bad side.
        """
        sizes, prices = self._side(side)
        n = len(prices) if depth is None else max(0, min(depth, len(prices)))
        if side == "bid":
            chosen = prices[len(prices) - n:][::-1]
        else:
            chosen = prices[:n]
        return [(p, sizes[p]) for p in chosen]

    def prices_sizes_between(self, side: Side, low: float, high: float
                             ) -> tuple[np.ndarray, np.ndarray]:
        """Levels with ``low <= price < high``, best-first, as two float64 arrays of shape
        (k,): prices (quote currency) and sizes (base units). O(log n + k).
        """
        sizes, prices = self._side(side)
        chosen = prices[bisect_left(prices, low):bisect_left(prices, high)]
        if side == "bid":
            chosen.reverse()
        return np.array(chosen, dtype=np.float64), np.array([sizes[p] for p in chosen],
                                                              dtype=np.float64)

    def copy(self) -> OrderBook:
        """An independent copy (for keeping a book across session seconds)."""
        other = OrderBook()
        other._bids.update(self._bids)
        other._asks.update(self._asks)
        other._bid_prices.extend(self._bid_prices)
        other._ask_prices.extend(self._ask_prices)
        return other

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OrderBook):
            return NotImplemented
        return self._bids == other._bids and self._asks == other._asks

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return (f"OrderBook(bid={self.best_bid()}, ask={self.best_ask()}, "
                f"levels={len(self._bid_prices)}/{len(self._ask_prices)})")

    def _side(self, side: Side) -> tuple[dict[float, float], list[float]]:
        if side == "bid":
            return self._bids, self._bid_prices
        if side == "ask":
            return self._asks, self._ask_prices
        raise ValueError(f"side must be 'bid' or 'ask', got {side!r}")


def _apply_side(sizes: dict[float, float], prices: list[float], levels: Iterable[Level]) -> int:
    n = 0
    for price, size in levels:
        n += 1
        if size == 0.0:
            if sizes.pop(price, None) is not None:
                del prices[bisect_left(prices, price)]
        else:
            if price not in sizes:
                insort(prices, price)
            sizes[price] = size
    return n

