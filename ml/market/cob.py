"""Consolidated order book (COB) frames: USD depth in price buckets around the mid.

Bucket definition (``CobFrame`` docstring in ``events.py``, identical to
``shared/bench/peer_orderbook.py::buckets_from_sorted`` so benchmarks compare to 1e-9):

- ``mid = (best_bid + best_ask) / 2``; ``center = floor(mid / width) * width``;
- ``first_bucket_price = lo = center - N * width``, ``hi = center + (N + 1) * width``;
- a level at price ``p`` with ``lo <= p < hi`` goes to bucket ``i = (p - lo) // width``
  (Python / numpy float floor division, kept only if ``0 <= i <= 2N``) and adds ``p * size``
  USD to that side's bucket; sums run best-first, as in the peer code.

The grid is anchored to the mid's bucket, not to the mid itself: while the mid stays inside
``[center, center + width)`` the edges stay put; when the mid crosses an edge, ``center`` moves
by one width and the whole grid shifts by one bucket (bucket ``N`` always holds the mid).
Arrays are float64 (exact comparison with peers); cast to float32 downstream if wanted.
"""
from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from ml.market.events import CobFrame
from ml.market.orderbook import OrderBook

logger = logging.getLogger(__name__)

IMBALANCE_HALF_WIDTH = 5  # imbalance_5 spans buckets N-5 .. N+5


def cob_frame(book: OrderBook, symbol: str, ts: int, bucket_width: float,
              n_buckets: int = 20) -> CobFrame | None:
    """Build the COB frame of ``book`` (module docstring for the bucket grid).

    Args:
        book: a synced, uncrossed book.
        symbol: instrument, e.g. "ETHUSDT".
        ts: ms, start of the exchange second the frame closes.
        bucket_width: USD per bucket (e.g. 1 for ETHUSDT, 10 for BTCUSDT).
        n_buckets: N; the frame has ``2N + 1`` buckets.

    Returns:
        the frame (``imbalance_ma`` left empty, see :class:`ImbalanceMA`), or None if a side
        of the book is empty. Raises ValueError if ``bucket_width <= 0`` or ``n_buckets < 0``.
    """
    if bucket_width <= 0 or n_buckets < 0:
        raise ValueError(f"bucket_width must be > 0 and n_buckets >= 0, "
                         f"got {bucket_width!r}, {n_buckets!r}")
    best_bid, best_ask = book.best_bid(), book.best_ask()
    if best_bid is None or best_ask is None:
        return None
    mid = (best_bid + best_ask) / 2
    center = math.floor(mid / bucket_width) * bucket_width
    lo = center - n_buckets * bucket_width
    hi = center + (n_buckets + 1) * bucket_width
    n_total = 2 * n_buckets + 1
    bid_usd = bucket_sums(*book.prices_sizes_between("bid", lo, hi), lo, bucket_width, n_total)
    ask_usd = bucket_sums(*book.prices_sizes_between("ask", lo, hi), lo, bucket_width, n_total)
    return CobFrame(
        symbol=symbol, ts=ts, mid=mid, best_bid=best_bid, best_ask=best_ask,
        bucket_width=bucket_width, n_buckets=n_buckets, first_bucket_price=lo,
        bid_usd=bid_usd, ask_usd=ask_usd,
        imbalance=imbalance(bid_usd, ask_usd),
        imbalance_5=imbalance_around_mid(bid_usd, ask_usd, n_buckets),
    )


def bucket_sums(prices: np.ndarray, sizes: np.ndarray, lo: float, width: float,
                n_total: int) -> np.ndarray:
    """USD (``price * size``) per bucket, shape ``(n_total,)`` float64, summed in input order.

    ``prices``/``sizes``: shape (k,), best-first; bucket ``i = (p - lo) // width``; levels
    outside buckets ``0 .. n_total - 1`` are ignored.
    """
    idx = np.floor_divide(prices - lo, width)  # same float semantics as Python's //
    keep = (idx >= 0) & (idx < n_total)
    return np.bincount(idx[keep].astype(np.intp), weights=(prices * sizes)[keep],
                       minlength=n_total).astype(np.float64, copy=False)


def imbalance(bid_usd: np.ndarray, ask_usd: np.ndarray) -> np.ndarray:
    """``(bid - ask) / (bid + ask)`` per bucket, 0 where both are 0. Shape of the inputs."""
    total = bid_usd + ask_usd
    return np.divide(bid_usd - ask_usd, total, out=np.zeros_like(total), where=total > 0)


def imbalance_around_mid(bid_usd: np.ndarray, ask_usd: np.ndarray, n_buckets: int,
                         half_width: int = IMBALANCE_HALF_WIDTH) -> float:
    """Imbalance ratio over buckets ``N - half_width .. N + half_width`` (clipped to the grid)."""
    start, stop = max(0, n_buckets - half_width), n_buckets + half_width + 1
    bid, ask = float(bid_usd[start:stop].sum()), float(ask_usd[start:stop].sum())
    total = bid + ask
    return (bid - ask) / total if total > 0 else 0.0


class ImbalanceMA:
    """Simple moving averages of ``imbalance_5``, one value per second.

    :meth:`update` appends a frame's ``imbalance_5`` and fills ``frame.imbalance_ma`` with
    ``{"1s": ..., "5s": ..., "15s": ..., "60s": ...}``: the mean of the last n values pushed, or
    of all of them while fewer than n exist. Seconds without a frame (book not synced) push
    nothing, so a window then spans the last n seconds that had a frame.
    """

    def __init__(self, windows: Sequence[int] = (1, 5, 15, 60)) -> None:
        if not windows or min(windows) < 1:
            raise ValueError(f"windows must be positive integers, got {windows!r}")
        self.windows = tuple(windows)
        self._values: deque[float] = deque(maxlen=max(self.windows))

    def update(self, frame: CobFrame) -> CobFrame:
        """Push ``frame.imbalance_5`` and fill ``frame.imbalance_ma`` in place; returns frame."""
        self._values.append(frame.imbalance_5)
        values = list(self._values)
        for n in self.windows:
            last = values[-n:]
            frame.imbalance_ma[f"{n}s"] = sum(last) / len(last)
        return frame
