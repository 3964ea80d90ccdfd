"""Bybit v5 public websocket (spot and linear): ``orderbook.{depth}.{symbol}``,
``publicTrade.{symbol}``, ``kline.{interval}.{symbol}``.

Source: Bybit v5 docs, "WebSocket Stream / Public" (bybit-exchange.github.io/docs/v5/websocket/
public/orderbook, .../trade, .../kline), checked against the recorded messages in
``shared/data/ws_samples/cryptofeed_BYBIT.jsonl.zst``.

Order book mapping: a ``snapshot`` becomes an ``OrderBookSnapshot`` with ``last_update_id = u``;
a ``delta`` an ``OrderBookDelta`` with ``first_update_id = final_update_id = u`` and
``prev_final_update_id = None`` (Bybit sends no previous id: see :func:`book_continues`).
``ts_event`` is the message ``ts`` (ms, when the system produced the data). ``seq`` (the
cross-topic matching sequence) is not carried.

Trades: ``T`` time (ms), ``p``, ``v``, ``S`` taker side (``Sell`` -> ``is_buyer_maker``), ``i``
the trade id, a UUID on linear / an integer string on spot: the UUID's 128-bit value is used.
Candles: only closed ones (``confirm: true``); interval "1" -> "1m", "60" -> "1h", "D" -> "1d",
other minute counts -> "<n>m"; ``turnover`` is the quote volume.
"""
from __future__ import annotations

import logging
import uuid

from ml.market.errors import MalformedMessage
from ml.market.events import Candle, OrderBookDelta, OrderBookSnapshot, Trade
from ml.market.venues import VenueEvent
from ml.market.venues import _fields as f
from ml.market.venues.symbols import normalize_symbol

logger = logging.getLogger(__name__)

_INTERVALS = {"1": "1m", "60": "1h", "D": "1d", "W": "1w", "M": "1M"}


def parse_message(payload: dict | bytes | str) -> list[VenueEvent] | None:
    """Parse one Bybit v5 public message (module docstring for the mapping).

    Returns a list of events (one book event; one Trade per trade; closed Candles, possibly
    none) or None for topics we do not use (tickers, liquidations) and control messages.
    Raises MalformedMessage naming the bad field.
    """
    msg = f.decode_object(payload)
    topic = msg.get("topic")
    if not isinstance(topic, str):
        return None  # {"op": "subscribe", "success": true, ...}, pong
    channel = topic.partition(".")[0]
    if channel == "orderbook":
        return [parse_book(msg, topic)]
    if channel == "publicTrade":
        return parse_trades(msg, topic)
    if channel == "kline":
        return parse_candles(msg, topic)
    return None


def parse_book(msg: dict, where: str) -> OrderBookSnapshot | OrderBookDelta:
    """An ``orderbook.*`` message: ``type`` snapshot | delta, ``ts``, ``data.{s,b,a,u,seq}``."""
    data = f.obj(msg, "data", where)
    kind = msg.get("type")
    symbol = normalize_symbol(f.text(data, "s", where))
    ts = f.integer(msg, "ts", where)
    u = f.integer(data, "u", where)
    bids, asks = f.levels(data.get("b"), where, "b"), f.levels(data.get("a"), where, "a")
    if kind == "snapshot":
        return OrderBookSnapshot(symbol, u, bids, asks, ts_event=ts)
    if kind == "delta":
        return OrderBookDelta(symbol, ts, u, u, None, bids, asks)
    raise MalformedMessage(f"{where}: field 'type' must be snapshot or delta, got {kind!r}")


def parse_trades(msg: dict, where: str) -> list[Trade]:
    """A ``publicTrade.*`` message: ``data`` is a list of ``{T, s, S, v, p, i}``."""
    trades = []
    for item in f.array(msg, "data", where):
        if not isinstance(item, dict):
            raise MalformedMessage(f"{where}: field 'data' must hold trade objects, got {item!r}")
        side = item.get("S")
        if side not in ("Buy", "Sell"):
            raise MalformedMessage(f"{where}: field 'S' must be Buy or Sell, got {side!r}")
        trades.append(Trade(
            symbol=normalize_symbol(f.text(item, "s", where)),
            ts_event=f.integer(item, "T", where),
            trade_id=_trade_id(item.get("i"), where),
            price=f.price(item.get("p"), where, "p"),
            size=f.size(item.get("v"), where, "v"),
            is_buyer_maker=side == "Sell",
        ))
    return trades


def parse_candles(msg: dict, where: str) -> list[Candle]:
    """A ``kline.{interval}.{symbol}`` message; only ``confirm: true`` items become Candles."""
    parts = where.split(".")
    if len(parts) != 3:
        raise MalformedMessage(f"{where}: field 'topic' must be kline.<interval>.<symbol>")
    symbol = normalize_symbol(parts[2])
    candles = []
    for item in f.array(msg, "data", where):
        if not isinstance(item, dict):
            raise MalformedMessage(f"{where}: field 'data' must hold candle objects, got {item!r}")
        confirm = item.get("confirm")
        if not isinstance(confirm, bool):
            raise MalformedMessage(f"{where}: field 'confirm' missing or not a boolean: {confirm!r}")
        candle = Candle(
            symbol=symbol,
            timeframe=_timeframe(f.text(item, "interval", where), where),
            open_time=f.integer(item, "start", where),
            open=f.price(item.get("open"), where, "open"),
            high=f.price(item.get("high"), where, "high"),
            low=f.price(item.get("low"), where, "low"),
            close=f.price(item.get("close"), where, "close"),
            volume=f.size(item.get("volume"), where, "volume"),
            quote_volume=f.size(item.get("turnover"), where, "turnover"),
        )
        if confirm:
            candles.append(candle)
    return candles


def book_continues(previous_u: int | None, event: OrderBookSnapshot | OrderBookDelta) -> bool:
    """Bybit book rule: a snapshot always resets the book (also the ``u == 1`` snapshot sent
    after a service restart); a delta must have ``u == previous u + 1``.

    ``previous_u`` is the ``u`` of the last applied message of this topic on this connection
    (None before the first snapshot: a delta then does not continue anything). Returns False
    on a gap: drop the book and wait for / request a new snapshot.
    Source: Bybit v5 docs, orderbook "Process snapshot/delta" and the ``u`` field notes.
    """
    if isinstance(event, OrderBookSnapshot):
        return True
    return previous_u is not None and event.first_update_id == previous_u + 1


def _timeframe(interval: str, where: str) -> str:
    if interval in _INTERVALS:
        return _INTERVALS[interval]
    if interval.isdigit():
        return f"{interval}m"
    raise MalformedMessage(f"{where}: field 'interval' is not a Bybit interval: {interval!r}")


def _trade_id(value: object, where: str) -> int:
    if isinstance(value, str) and f.INTEGER_TEXT.fullmatch(value):
        return int(value)
    if isinstance(value, str):
        try:
            return uuid.UUID(value).int
        except ValueError:
            pass
    raise MalformedMessage(f"{where}: field 'i' is not a trade id (UUID or integer): {value!r}")
