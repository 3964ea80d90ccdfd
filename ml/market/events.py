"""Normalized market events and per-second products (pure Python, no Django).

Units everywhere in ``ml/``: prices in quote currency (USDT ~ USD), sizes in base units,
timestamps as integer milliseconds since the Unix epoch, UTC. ``ts_event`` is the venue's
time (Binance ``E`` for depth, ``T`` for trades); ``ts_init`` is our receive time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Level = tuple[float, float]  # (price, size in base units); size 0 deletes the level


def reduce_positional(self):
    """Pickle an event as a call of its class with its fields in order. The default of a slots
    dataclass restores each object through a Python-level ``__setstate__``, which took ~60% of
    loading a backtest's market tape (~16,000 events; ``ml.backtest.market_tape``); a constructor
    call loads ~2.4x faster. Every field is an ``__init__`` argument, so the object is the same."""
    return type(self), tuple(getattr(self, name) for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class Trade:
    """One exchange trade (Binance ``@trade``: ``t``, ``p``, ``q``, ``T``, ``m``)."""

    __reduce__ = reduce_positional

    symbol: str
    ts_event: int  # ms, trade time T
    trade_id: int
    price: float
    size: float
    is_buyer_maker: bool  # True: the taker sold (aggressor side SELL)


@dataclass(frozen=True, slots=True)
class OrderBookDelta:
    """One diff-depth message (Binance ``depthUpdate``).

    ``first_update_id``/``final_update_id`` are Binance ``U``/``u``; ``prev_final_update_id`` is
    the futures ``pu`` (None on spot). Sizes are absolute, 0 deletes the level.
    """

    __reduce__ = reduce_positional

    symbol: str
    ts_event: int  # ms, event time E
    first_update_id: int
    final_update_id: int
    prev_final_update_id: int | None
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class OrderBookSnapshot:
    """A REST depth snapshot (``lastUpdateId``, ``bids``, ``asks``; futures also ``E``)."""

    __reduce__ = reduce_positional

    symbol: str
    last_update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts_event: int | None = None  # ms; spot snapshots carry no exchange time


@dataclass(frozen=True, slots=True)
class StreamGap:
    """A window in which a live stream may have missed messages of ``symbol`` (a disconnect).

    Emitted by a live venue when the stream resumes: ``from_ms`` is the exchange time (ms) of the
    last message received before the loss (or the start of the second of the first message, for
    the first connection: that second began before we listened), ``to_ms`` the exchange time of
    the first message received after it. Trades with ``from_ms < T < to_ms`` may be missing, so
    every second that overlaps ``[from_ms, to_ms]`` is incomplete: a consumer must not build
    candles for it from the stream (nor interpolate them) but fetch them again (REST backfill).
    ``cause``: "connect", "disconnect", "server_shutdown", "idle", "rotation", "overflow".
    ``ts_event`` is ``to_ms`` (where the gap sits in the stream's time order).
    """

    __reduce__ = reduce_positional

    symbol: str
    from_ms: int
    to_ms: int
    cause: str

    @property
    def ts_event(self) -> int:
        return self.to_ms


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV candle. ``open_time`` in ms; ``timeframe`` one of 1s, 1m, 1h, 1d."""

    __reduce__ = reduce_positional

    symbol: str
    timeframe: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float  # base units
    quote_volume: float = 0.0  # quote units (USD)
    trade_count: int = 0


@dataclass(slots=True)
class CobFrame:
    """Consolidated order book frame for one exchange second.

    Buckets: ``2 * n_buckets + 1`` price buckets of width ``bucket_width`` (USD).
    ``center = floor(mid / width) * width``; bucket ``i`` covers
    ``[first_bucket_price + i * width, first_bucket_price + (i + 1) * width)`` with
    ``first_bucket_price = center - n_buckets * width``, so bucket ``n_buckets`` holds the mid.
    ``bid_usd``/``ask_usd`` are sums of price * size (USD) of the levels in each bucket, shape (2N+1,).
    ``imbalance[i] = (bid - ask) / (bid + ask)`` (0 where both are 0).
    ``imbalance_5`` is the same ratio over the 11 buckets ``n_buckets-5 .. n_buckets+5``;
    ``imbalance_ma`` maps "1s", "5s", "15s", "60s" to its simple moving average over that many
    seconds (fewer at the start of a session). ``bucket_imbalance_ma`` maps the same keys to
    per-bucket moving averages of ``imbalance``, shape (2N+1,), matched by price bucket, not by
    index (``ml.market.cob.BucketImbalanceMA``); empty when not computed.
    """

    __reduce__ = reduce_positional

    symbol: str
    ts: int  # ms, start of the exchange second the frame closes
    mid: float
    best_bid: float
    best_ask: float
    bucket_width: float
    n_buckets: int
    first_bucket_price: float
    bid_usd: np.ndarray
    ask_usd: np.ndarray
    imbalance: np.ndarray
    imbalance_5: float
    imbalance_ma: dict[str, float] = field(default_factory=dict)
    bucket_imbalance_ma: dict[str, np.ndarray] = field(default_factory=dict)
