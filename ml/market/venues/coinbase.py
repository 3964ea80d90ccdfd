"""Coinbase Advanced Trade websocket: ``level2`` (``l2_data``), ``market_trades``, ``candles``.

Source: Coinbase Advanced Trade API, "WebSocket Channels" (docs.cdp.coinbase.com/
advanced-trade/docs/ws-channels), checked against the recorded messages in
``shared/data/ws_samples/cryptofeed_COINBASE.jsonl.zst``.

Every message is ``{"channel", "timestamp", "sequence_num", "events": [...]}``. ``sequence_num``
counts every message of the connection (all channels and products), so a gap is detected per
connection, not per book: :func:`sequence_continues`.

Order book mapping: each ``l2_data`` event ``{"type": "snapshot"|"update", "product_id",
"updates": [{"side": "bid"|"offer", "event_time", "price_level", "new_quantity"}]}`` becomes an
``OrderBookSnapshot`` (``last_update_id = sequence_num``) or an ``OrderBookDelta`` with
``first_update_id = final_update_id = sequence_num`` and ``prev_final_update_id = None``;
``ts_event`` is the latest ``event_time`` of its updates (the message ``timestamp`` if none), ms.

Trades: ``trade_id``, ``price``, ``size``, ``time``, ``side`` the maker side (Coinbase's
convention: ``SELL`` here is an uptick by a buying taker; see the ``market_trades`` docs), so
``is_buyer_maker = side == "BUY"``. Candles: the channel's 5-minute candles, ``start`` in
epoch seconds -> ``open_time`` ms, timeframe "5m"; the venue sends the current (still open)
candle too, so a later message for the same ``start`` supersedes an earlier one.
"""
from __future__ import annotations

import logging

from ml.market.errors import MalformedMessage
from ml.market.events import Candle, OrderBookDelta, OrderBookSnapshot, Trade
from ml.market.venues import VenueEvent
from ml.market.venues import _fields as f
from ml.market.venues.symbols import normalize_symbol

logger = logging.getLogger(__name__)

CANDLE_TIMEFRAME = "5m"


def parse_message(payload: dict | bytes | str) -> list[VenueEvent] | None:
    """Parse one Advanced Trade message (module docstring for the mapping).

    Returns the events of every entry of ``events`` (books, trades or candles), or None for
    other channels (``ticker``, ``heartbeats``, ``subscriptions``). Raises MalformedMessage.
    """
    msg = f.decode_object(payload)
    channel = msg.get("channel")
    if channel not in ("l2_data", "market_trades", "candles"):
        return None
    where = str(channel)
    events = f.array(msg, "events", where)
    out: list[VenueEvent] = []
    for event in events:
        if not isinstance(event, dict):
            raise MalformedMessage(f"{where}: field 'events' must hold objects, got {event!r}")
        if channel == "l2_data":
            out.append(_book(event, msg, where))
        elif channel == "market_trades":
            out.extend(_trade(t, where) for t in _objects(event, "trades", where))
        else:
            out.extend(_candle(c, where) for c in _objects(event, "candles", where))
    return out


def sequence_continues(previous_sequence_num: int | None, sequence_num: int) -> bool:
    """Coinbase rule: ``sequence_num`` of the connection increases by exactly 1 per message.

    A gap (or a repeat) means a message was lost on this connection: resubscribe to get new
    snapshots. Source: Advanced Trade "WebSocket Overview", sequence numbers.
    """
    return previous_sequence_num is None or sequence_num == previous_sequence_num + 1


def _book(event: dict, msg: dict, where: str) -> OrderBookSnapshot | OrderBookDelta:
    seq = f.integer(msg, "sequence_num", where)
    symbol = normalize_symbol(f.text(event, "product_id", where))
    bids, asks, ts = [], [], None
    for update in _objects(event, "updates", where):
        side = update.get("side")
        level = (f.price(update.get("price_level"), where, "price_level"),
                 f.size(update.get("new_quantity"), where, "new_quantity"))
        if side == "bid":
            bids.append(level)
        elif side == "offer":
            asks.append(level)
        else:
            raise MalformedMessage(f"{where}: field 'side' must be bid or offer, got {side!r}")
        ts = max(ts or 0, f.iso_ms(update.get("event_time"), where, "event_time"))
    if ts is None:
        ts = f.iso_ms(msg.get("timestamp"), where, "timestamp")
    kind = event.get("type")
    if kind == "snapshot":
        return OrderBookSnapshot(symbol, seq, tuple(bids), tuple(asks), ts_event=ts)
    if kind == "update":
        return OrderBookDelta(symbol, ts, seq, seq, None, tuple(bids), tuple(asks))
    raise MalformedMessage(f"{where}: field 'type' must be snapshot or update, got {kind!r}")


def _trade(item: dict, where: str) -> Trade:
    side = item.get("side")
    if side not in ("BUY", "SELL"):
        raise MalformedMessage(f"{where}: field 'side' must be BUY or SELL, got {side!r}")
    return Trade(
        symbol=normalize_symbol(f.text(item, "product_id", where)),
        ts_event=f.iso_ms(item.get("time"), where, "time"),
        trade_id=f.integer(item, "trade_id", where),
        price=f.price(item.get("price"), where, "price"),
        size=f.size(item.get("size"), where, "size"),
        is_buyer_maker=side == "BUY",
    )


def _candle(item: dict, where: str) -> Candle:
    return Candle(
        symbol=normalize_symbol(f.text(item, "product_id", where)),
        timeframe=CANDLE_TIMEFRAME,
        open_time=f.integer(item, "start", where) * 1000,
        open=f.price(item.get("open"), where, "open"),
        high=f.price(item.get("high"), where, "high"),
        low=f.price(item.get("low"), where, "low"),
        close=f.price(item.get("close"), where, "close"),
        volume=f.size(item.get("volume"), where, "volume"),
    )


def _objects(data: dict, key: str, where: str) -> list[dict]:
    items = f.array(data, key, where)
    for item in items:
        if not isinstance(item, dict):
            raise MalformedMessage(f"{where}: field {key!r} must hold objects, got {item!r}")
    return items
