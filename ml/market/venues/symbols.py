"""Venue symbols to our instrument symbol form: base + quote, upper case, no separator.

Rules (one function for every venue, so "BTC-USDT" on OKX and "BTCUSDT" on Bybit meet):

- separators ``-``, ``/``, ``_`` are dropped: ``BTC-USDT`` (OKX, Coinbase) -> ``BTCUSDT``,
  ``XBT/USD`` (Kraken) -> ``BTCUSD``, ``BTC_USDT`` -> ``BTCUSDT``; already joined symbols
  (Binance, Bybit, MEXC ``BTCUSDT``) are only upper-cased;
- Kraken asset aliases: ``XBT`` -> ``BTC``, ``XDG`` -> ``DOGE`` (only in separated symbols);
- a perpetual suffix (``SWAP``, ``PERP``) is dropped: OKX ``BTC-USDT-SWAP`` -> ``BTCUSDT``, as
  Binance USD-M names its perpetual ``BTCUSDT`` (the market type belongs to the Instrument's
  venue, not to the symbol);
- a delivery date stays, after ``_`` as Binance COIN-M writes it: OKX ``BTC-USD-220527`` ->
  ``BTCUSD_220527``; any other suffix (options) is kept the same way.
"""
from __future__ import annotations

import logging
import re

from ml.market.errors import MalformedMessage

logger = logging.getLogger(__name__)

ASSET_ALIASES = {"XBT": "BTC", "XDG": "DOGE"}
PERPETUAL_SUFFIXES = frozenset({"SWAP", "PERP"})
_PART = re.compile(r"[A-Z0-9]+")


def normalize_symbol(venue_symbol: str) -> str:
    """Our symbol for a venue symbol (module docstring); raises MalformedMessage if it is not one."""
    if not isinstance(venue_symbol, str):
        raise MalformedMessage(f"symbol is not a string: {venue_symbol!r}")
    parts = re.split(r"[-/_]", venue_symbol.strip().upper())
    if not all(_PART.fullmatch(p) for p in parts):
        raise MalformedMessage(f"not a venue symbol: {venue_symbol!r}")
    if len(parts) == 1:
        return parts[0]
    base, quote, *rest = (ASSET_ALIASES.get(p, p) for p in parts)
    suffix = [p for p in rest if p not in PERPETUAL_SUFFIXES]
    return "_".join([base + quote, *suffix])
