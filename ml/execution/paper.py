"""Paper fills for market orders: walk the visible book levels, best first.

A market BUY takes asks from the best ask upward, a SELL takes bids from the best bid downward,
each level up to its visible size. This is the standard "walk the book" fill model (as in
nautilus_trader's sandbox execution with full book data): no queue position, no hidden liquidity,
no market impact beyond the visible levels.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)


class InsufficientLiquidity(ValueError):
    """The visible book cannot fill the whole quantity."""


@dataclass(frozen=True, slots=True)
class PaperFill:
    price: float  # quote per base
    size: float  # base units
    fee: float  # quote units (USD)


def walk_book(levels: Sequence[tuple[float, float]], quantity: float, fee_rate: float) -> list[PaperFill]:
    """Fill ``quantity`` (base units, > 0) against ``levels`` [(price, size)] given best first.

    Returns one PaperFill per level touched; fee = price * size * fee_rate (taker fee).
    Raises ValueError for a non-positive quantity and InsufficientLiquidity when the visible
    levels hold less than ``quantity`` (nothing is filled then: all or nothing).
    """
    if not quantity > 0:
        raise ValueError(f"quantity must be > 0, got {quantity}")
    fills: list[PaperFill] = []
    remaining = quantity
    for price, size in levels:
        if size <= 0:
            continue
        take = min(size, remaining)
        fills.append(PaperFill(price, take, price * take * fee_rate))
        remaining -= take
        if remaining <= 1e-12:
            return fills
    available = quantity - remaining
    raise InsufficientLiquidity(f"book holds {available:.8f} of {quantity:.8f} requested")
