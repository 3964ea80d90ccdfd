"""Pure parsers for the public websocket messages of other venues (no Django).

One module per venue (``bybit``, ``okx``, ``coinbase``, ``kraken``, ``mexc``), each with
``parse_message(payload) -> list[VenueEvent] | None``: the normalized events of
``ml.market.events`` one raw message carries (a trade message may carry several trades), or
``None`` for a channel we do not use (tickers, heartbeats, subscription acknowledgements).
Anything malformed raises ``ml.market.errors.MalformedMessage`` naming the field; a parsed
event always has finite prices > 0 and sizes >= 0.

Symbols are normalized with :func:`ml.market.venues.symbols.normalize_symbol` ("BTC-USDT",
"XBT/USD" -> "BTCUSDT", "BTCUSD"). Times are ms since the epoch, UTC.

Order book sequence ids go into ``OrderBookDelta.first_update_id`` / ``final_update_id`` /
``prev_final_update_id`` (and ``OrderBookSnapshot.last_update_id``); each module documents its
mapping and, where the venue's rule is simple, gives a pure ``book_continues`` check.
"""
from __future__ import annotations

from ml.market.events import Candle, OrderBookDelta, OrderBookSnapshot, Trade

VenueEvent = Trade | OrderBookDelta | OrderBookSnapshot | Candle
