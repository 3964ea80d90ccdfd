"""Trading costs in basis points (bps, 1e-4) of traded notional: fees, spread and slippage.

A round trip (enter, then exit) pays, in bps of notional:

- the fee on both legs (taker, or maker for resting orders);
- the full quoted spread: a market order pays half the spread against the mid on entry and half
  on exit;
- slippage on both legs: how far the volume-weighted price of walking the book for the order's
  notional lies beyond the touch (best price), 0 for an order the first level fills.

Spread and slippage come from a recorded book where one exists (:func:`spread_bps`,
:func:`slippage_bps`, :func:`slippage_from_frozen_book`), else from the :class:`CostModel`
defaults. The book walk is the paper venue's (``ml/execution/paper.py``: visible levels best
first, no hidden liquidity, no impact beyond them) expressed in USD of notional.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

BPS = 1e4


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class CostModel:
    """Cost assumptions, all bps of notional (defaults: Binance spot, 0.1% taker and maker fee).

    Attributes:
        taker_fee_bps: fee of a leg that takes liquidity.
        maker_fee_bps: fee of a leg that rests on the book.
        spread_bps: the FULL quoted spread, used when no recorded book gives one.
        slippage_bps: slippage per leg beyond the touch, used when no recorded book gives one.

    Raises ValueError, naming the field, for a negative or non-finite value.
    """

    taker_fee_bps: float = 10.0
    maker_fee_bps: float = 10.0
    spread_bps: float = 1.0
    slippage_bps: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _non_negative(f.name, getattr(self, f.name))

    def round_trip_bps(self, *, spread_bps: float | None = None, slippage_bps: float | None = None,
                       maker: bool = False) -> float:
        """Cost of one round trip (bps of notional): 2 x fee + full spread + 2 x slippage.

        ``spread_bps`` (full spread) and ``slippage_bps`` (per leg) override the configured values,
        e.g. with figures measured on a recorded book; ``maker`` picks the maker fee for both legs
        (it changes the fee only). Raises ValueError on a negative or non-finite override.
        """
        return sum(self.breakdown(1, spread_bps=spread_bps, slippage_bps=slippage_bps, maker=maker).values())

    def breakdown(self, trades: int, *, spread_bps: float | None = None, slippage_bps: float | None = None,
                  maker: bool = False) -> dict[str, float]:
        """Total cost of ``trades`` round trips by kind, bps of one trade's notional:
        {"fees", "spread", "slippage"} (overrides as :meth:`round_trip_bps`). Raises ValueError on
        a negative or non-integer ``trades`` and on bad overrides."""
        if isinstance(trades, bool) or int(trades) != trades or trades < 0:
            raise ValueError(f"trades must be an integer >= 0, got {trades!r}")
        fee = self.maker_fee_bps if maker else self.taker_fee_bps
        spread = self.spread_bps if spread_bps is None else _non_negative("spread_bps", spread_bps)
        slip = self.slippage_bps if slippage_bps is None else _non_negative("slippage_bps", slippage_bps)
        return {"fees": trades * 2 * fee, "spread": trades * spread, "slippage": trades * 2 * slip}

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CostModel:
        """The model from :meth:`to_dict` output; missing keys take the defaults. Raises ValueError
        on unknown keys or bad values."""
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown CostModel fields: {sorted(unknown)}")
        return cls(**data)


def spread_bps(best_bid: float, best_ask: float) -> float:
    """Full quoted spread 1e4 (ask - bid) / mid, bps; 0 for a locked book. Raises ValueError on a
    non-positive or non-finite price or a crossed book (bid > ask)."""
    for name, v in (("best_bid", best_bid), ("best_ask", best_ask)):
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be finite and > 0, got {v}")
    if best_bid > best_ask:
        raise ValueError(f"crossed book: best_bid {best_bid} > best_ask {best_ask}")
    return BPS * (best_ask - best_bid) / ((best_ask + best_bid) / 2)


def _levels(levels: np.ndarray) -> np.ndarray:
    a = np.asarray(levels, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"levels must be (K, 2) [price, size], got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError("empty book: no levels to walk")
    if not np.isfinite(a).all() or (a[:, 0] <= 0).any() or (a[:, 1] <= 0).any():
        raise ValueError("levels must hold finite prices > 0 and sizes > 0")
    step = np.diff(a[:, 0])
    if not ((step > 0).all() or (step < 0).all()):
        raise ValueError("level prices must be strictly monotonic, best first (asks ascending, bids descending)")
    return a


def walk_book(levels: np.ndarray, quantity_usd: float) -> tuple[float, float]:
    """Take ``quantity_usd`` (> 0) of notional from ``levels`` float (K, 2) [price USD, size base
    units], best first (asks ascending for a buy, bids descending for a sell).

    Returns (VWAP price USD, filled USD). A book holding less notional than asked is a partial
    fill: filled < quantity_usd, the VWAP of all its levels. Raises ValueError on an empty or
    malformed book (non-positive price or size, prices not monotonic) or a bad quantity.
    """
    q = _non_negative("quantity_usd", quantity_usd)
    if q == 0:
        raise ValueError("quantity_usd must be > 0")
    a = _levels(levels)
    prices, sizes = a[:, 0], a[:, 1]
    notional = np.cumsum(prices * sizes)
    k = int(np.searchsorted(notional, q))  # first level that completes the order
    if k == 0:
        return float(prices[0]), q  # inside the touch: the touch price exactly
    if k == len(prices):
        return float(notional[-1] / sizes.sum()), float(notional[-1])
    base = sizes[:k].sum() + (q - notional[k - 1]) / prices[k]
    return float(q / base), q


def slippage_bps(levels: np.ndarray, quantity_usd: float) -> float:
    """Slippage of taking ``quantity_usd`` from ``levels`` (as :func:`walk_book`): 1e4 |VWAP / touch - 1|,
    bps, touch = the first level's price; 0 for a fill inside the first level. For a partial fill
    it is the slippage of what the book holds (a lower bound). Raises ValueError on an empty book."""
    vwap, _ = walk_book(levels, quantity_usd)
    return BPS * abs(vwap / float(np.asarray(levels, dtype=np.float64)[0, 0]) - 1.0)


def slippage_from_frozen_book(book: Any, side: str, quantity_usd: float) -> float:
    """:func:`slippage_bps` of a market order on a backtest's ``FrozenBook`` (``ml/backtest/batch.py``):
    ``side`` "buy" walks the asks, "sell" the bids (case-insensitive), over all ``book.depth`` kept
    levels. Raises ValueError on a bad side or an empty side of the book."""
    book_side = {"buy": "ask", "sell": "bid"}.get(str(side).lower())
    if book_side is None:
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    levels = book.levels(book_side, book.depth)
    if not levels:
        raise ValueError(f"empty book: no {book_side} levels")
    return slippage_bps(np.asarray(levels, dtype=np.float64), quantity_usd)
