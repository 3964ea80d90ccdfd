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
by one width and the whole grid shifts by one bucket (bucket ``N`` always holds the mid). Edges
are always multiples of the width (``k * width``), so a price bucket keeps its edges for ever and
is named by its key ``k = first_bucket_price / width + i``; moving averages per bucket follow the
key (:class:`BucketImbalanceMA`), so after a shift of s buckets index ``i`` continues the history
of index ``i + s`` of the previous frame.
Arrays are float64 (exact comparison with peers); cast to float32 downstream if wanted.
"""
from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from ml.market.events import CobFrame
from ml.market.gridbook import GridBook
from ml.market.orderbook import OrderBook

logger = logging.getLogger(__name__)

IMBALANCE_HALF_WIDTH = 5  # imbalance_5 spans buckets N-5 .. N+5


def cob_frame(book: OrderBook | GridBook, symbol: str, ts: int, bucket_width: float,
              n_buckets: int = 20) -> CobFrame | None:
    """Build the COB frame of ``book`` (module docstring for the bucket grid).

    Args:
        book: a synced, uncrossed book (a :class:`GridBook` computes the buckets in C, raising
            ``InvalidBookState`` if it is crossed).
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
    if isinstance(book, GridBook):  # same floats, computed in C
        got = book.frame_buckets(bucket_width, n_buckets)
        if got is None:
            return None
        bid_usd, ask_usd, mid, best_bid, best_ask, lo = got
        return CobFrame(
            symbol=symbol, ts=ts, mid=mid, best_bid=best_bid, best_ask=best_ask,
            bucket_width=bucket_width, n_buckets=n_buckets, first_bucket_price=lo,
            bid_usd=bid_usd, ask_usd=ask_usd, imbalance=imbalance(bid_usd, ask_usd),
            imbalance_5=imbalance_around_mid(bid_usd, ask_usd, n_buckets))
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


class BucketImbalanceMA:
    """Per-bucket moving averages of ``imbalance``, matched by price bucket (not index).

    Each frame's bucket ``i`` has the key ``k = round(first_bucket_price / width) + i`` (module
    docstring: edges are multiples of the width). For window n, bucket ``i`` of the current frame
    gets the mean of the imbalance of key ``k`` over the last n frames pushed, counting only the
    frames whose grid contained that key (the current one always does, so the mean is defined).
    Sums run newest to oldest (the C pipeline does the same, so both agree bit for bit).

    :meth:`update` fills ``frame.bucket_imbalance_ma`` with ``{"1s": (2N+1,), ...}`` float64.
    All frames pushed must share width and N (ValueError otherwise).
    """

    def __init__(self, windows: Sequence[int] = (1, 5, 15, 60)) -> None:
        if not windows or min(windows) < 1:
            raise ValueError(f"windows must be positive integers, got {windows!r}")
        self.windows = tuple(windows)
        self._rows: deque[tuple[int, np.ndarray]] = deque(maxlen=max(self.windows))
        self._shape: tuple[float, int] | None = None

    def update(self, frame: CobFrame) -> CobFrame:
        """Push ``frame.imbalance`` under its bucket keys and fill ``frame.bucket_imbalance_ma``."""
        shape = (frame.bucket_width, frame.n_buckets)
        if self._shape is not None and shape != self._shape:
            raise ValueError(f"frame grid {shape} differs from the history's {self._shape}")
        self._shape = shape
        key = round(frame.first_bucket_price / frame.bucket_width)
        self._rows.append((key, np.asarray(frame.imbalance, dtype=np.float64)))
        n_total = len(frame.imbalance)
        acc, cnt = np.zeros(n_total), np.zeros(n_total)
        idx = np.arange(n_total)
        rows = list(reversed(self._rows))  # newest first
        wanted = {min(n, len(rows)): f"{n}s" for n in self.windows}
        by_len: dict[int, np.ndarray] = {}
        for j, (past_key, values) in enumerate(rows[:max(wanted)]):
            src = idx + (key - past_key)
            ok = (src >= 0) & (src < n_total)
            acc[ok] += values[src[ok]]
            cnt[ok] += 1
            if j + 1 in wanted:
                by_len[j + 1] = acc / cnt
        frame.bucket_imbalance_ma = {f"{n}s": by_len[min(n, len(rows))].copy() for n in self.windows}
        return frame
