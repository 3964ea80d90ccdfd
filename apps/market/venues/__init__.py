"""Venue clients: live Binance (``live.LiveVenue``), Bybit / MEXC spot on ccxt.pro (``ccxt_pro.CcxtProVenue``),
and the Binance replay venue served on loopback (``replay_server``).

:func:`open_venue` picks the client for an Instrument's venue (``Instrument.venue``), so the stream runner
and the Engine see one interface: ``events()``, ``snapshot()``, ``rest``, ``counts``, ``status``,
``close()``, ``symbols``, ``venue``, ``sync_rule``.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

logger = logging.getLogger(__name__)

BINANCE_VENUES = ("binance", "binanceusdm")
CCXT_PRO_VENUES = ("bybit", "mexc")


def open_venue(*, venue: str, symbols: Sequence[str], **options: object):
    """A started live venue for ``symbols`` on ``venue``: :class:`~apps.market.venues.live.LiveVenue` for
    "binance" / "binanceusdm", :class:`~apps.market.venues.ccxt_pro.CcxtProVenue` for "bybit" / "mexc"
    (``options`` go to its constructor, e.g. ``endpoints``, ``config``, ``start``).

    Raises ValueError naming the venue when no client exists for it.
    """
    if venue in BINANCE_VENUES:
        from apps.market.venues.live import LiveVenue

        return LiveVenue(venue=venue, symbols=symbols, **options)
    if venue in CCXT_PRO_VENUES:
        from apps.market.venues.ccxt_pro import CcxtProVenue

        return CcxtProVenue(venue=venue, symbols=symbols, **options)
    raise ValueError(f"no live client for venue {venue!r}; have {BINANCE_VENUES + CCXT_PRO_VENUES}")
