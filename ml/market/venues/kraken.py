"""Kraken websocket API v1 (``wss://ws.kraken.com``): ``book-<depth>`` and ``trade``.

Source: Kraken "WebSocket API v1" docs (docs.kraken.com/api/docs/websocket-v1/book, .../trade),
checked against the recorded messages in ``shared/data/ws_samples/cryptofeed_KRAKEN.jsonl.zst``.

Data messages are JSON arrays ``[channelID, payload..., channelName, pair]``; dict messages are
events (``heartbeat``, ``systemStatus``, ``subscriptionStatus``) and parse to None.

Order book mapping: the first message ``{"as": [[price, volume, time], ...], "bs": [...]}`` is an
``OrderBookSnapshot`` (``last_update_id = 0``: Kraken v1 has no sequence number). An update
carries ``{"a": [...]}`` and / or ``{"b": [...]}`` (one or two objects) with a CRC32 ``c`` of
the resulting top 10 levels: it becomes an ``OrderBookDelta`` with ``first_update_id = 0``,
``final_update_id = c`` and ``prev_final_update_id = None``; verify the local book with
:func:`book_checksum` after applying it (a mismatch means a lost or misapplied update: resubscribe).
``ts_event`` is the latest level time (epoch seconds -> ms). Volume 0 deletes the level.

Trades ``[price, volume, time, side, orderType, misc]``: ``side`` is the taker side (``s`` ->
``is_buyer_maker``); Kraken v1 has no trade id, so ``trade_id = 0``. ``XBT/USD`` -> ``BTCUSD``.
"""
from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence

from ml.market.errors import MalformedMessage
from ml.market.events import Level, OrderBookDelta, OrderBookSnapshot, Trade
from ml.market.venues import VenueEvent
from ml.market.venues import _fields as f
from ml.market.venues.symbols import normalize_symbol

logger = logging.getLogger(__name__)

CHECKSUM_DEPTH = 10


def parse_message(payload: dict | list | bytes | str) -> list[VenueEvent] | None:
    """Parse one Kraken v1 message (module docstring for the mapping).

    Returns ``[OrderBookSnapshot]``, ``[OrderBookDelta]``, one Trade per trade, or None for
    events and other channels (``ticker``, ``spread``, ``ohlc-*``). Raises MalformedMessage.
    """
    msg = f.decode(payload)
    if isinstance(msg, dict):
        return None
    if not isinstance(msg, list) or len(msg) < 4:
        raise MalformedMessage(f"expected a JSON object or a [channelID, ..., name, pair] array, got {msg!r}"[:200])
    name, pair = msg[-2], msg[-1]
    if not isinstance(name, str) or not isinstance(pair, str):
        raise MalformedMessage(f"channel name and pair must be strings, got {name!r}, {pair!r}")
    where = f"{name}:{pair}"
    if name.startswith("book-"):
        return [parse_book(msg[1:-2], normalize_symbol(pair), where)]
    if name == "trade":
        if len(msg) != 4 or not isinstance(msg[1], list):
            raise MalformedMessage(f"{where}: trade payload must be a list of trades")
        return [_trade(item, normalize_symbol(pair), where) for item in msg[1]]
    return None


def parse_book(parts: list, symbol: str, where: str) -> OrderBookSnapshot | OrderBookDelta:
    """The one or two book objects of a ``book-*`` message."""
    if not parts or not all(isinstance(p, dict) for p in parts):
        raise MalformedMessage(f"{where}: book payload must be one or two objects")
    merged: dict = {}
    for part in parts:
        merged.update(part)
    if "as" in merged or "bs" in merged:
        asks, ts_a = _levels(merged, "as", where)
        bids, ts_b = _levels(merged, "bs", where)
        return OrderBookSnapshot(symbol, 0, bids, asks, ts_event=max(ts_a, ts_b))
    if "a" not in merged and "b" not in merged:
        raise MalformedMessage(f"{where}: field 'a' or 'b' missing")
    asks, ts_a = _levels(merged, "a", where) if "a" in merged else ((), 0)
    bids, ts_b = _levels(merged, "b", where) if "b" in merged else ((), 0)
    checksum = f.integer(merged, "c", where)
    if not 0 <= checksum <= 0xFFFFFFFF:
        raise MalformedMessage(f"{where}: field 'c' is not a CRC32: {checksum}")
    return OrderBookDelta(symbol, max(ts_a, ts_b), 0, checksum, None, bids, asks)


def book_checksum(bids: Sequence[Level], asks: Sequence[Level], price_decimals: int,
                  size_decimals: int = 8) -> int:
    """Kraken v1 CRC32 of a local book's top 10 levels, to compare with an update's ``c``.

    ``bids`` best first (descending), ``asks`` best first (ascending). Each level is written
    as Kraken sends it (``price_decimals`` / ``size_decimals`` digits, from the pair), the
    decimal point and leading zeros removed, price then volume; asks first, then bids.
    Source: Kraken docs, "Book checksum (v1)".
    """
    text = "".join(
        _digits(p, price_decimals) + _digits(q, size_decimals)
        for side in (asks, bids) for p, q in side[:CHECKSUM_DEPTH])
    return zlib.crc32(text.encode())


def _digits(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}".replace(".", "").lstrip("0")


def _levels(data: dict, key: str, where: str) -> tuple[tuple[Level, ...], int]:
    raw = data.get(key)
    if not isinstance(raw, list):
        raise MalformedMessage(f"{where}: field {key!r} {'missing' if raw is None else 'not a list'}")
    out, ts = [], 0
    for item in raw:
        if not isinstance(item, list) or len(item) < 3:
            raise MalformedMessage(f"{where}: field {key!r} must hold [price, volume, time] items, got {item!r}"[:200])
        out.append((f.price(item[0], where, key), f.size(item[1], where, key)))
        ts = max(ts, f.seconds_ms(item[2], where, key))
    return tuple(out), ts


def _trade(item: object, symbol: str, where: str) -> Trade:
    if not isinstance(item, list) or len(item) < 4:
        raise MalformedMessage(f"{where}: a trade must be [price, volume, time, side, ...], got {item!r}"[:200])
    side = item[3]
    if side not in ("b", "s"):
        raise MalformedMessage(f"{where}: field 'side' must be b or s, got {side!r}")
    return Trade(symbol=symbol, ts_event=f.seconds_ms(item[2], where, "time"), trade_id=0,
                 price=f.price(item[0], where, "price"), size=f.size(item[1], where, "volume"),
                 is_buyer_maker=side == "s")
