"""Pure parsers for raw Binance websocket / REST market-data messages.

Accepted shapes (Binance spot and USD-M futures, as recorded in ``shared/data/orderbook``):

- combined-stream wrapper ``{"stream": "<sym>@<name>", "data": {...}}`` or the bare payload;
- ``depthUpdate`` diffs: spot ``<sym>@depth@100ms`` (``E``, ``s``, ``U``, ``u``, ``b``, ``a``),
  futures ``<sym>@depth@0ms`` (also ``T`` and ``pu``);
- ``trade``: ``t`` id, ``p`` price, ``q`` quantity, ``T`` trade time, ``m`` buyer is maker;
- REST depth snapshots ``{"lastUpdateId", "bids", "asks"}`` (futures also ``E``, ``T``), which
  carry no symbol: the caller passes it.

Streams we do not use (``bookTicker``, ``markPrice@1s``, ``aggTrade``, ``kline``...) parse to
``None``. Prices and quantities arrive as decimal strings and become floats (quote currency and
base units). Source of the formats: Binance spot "WebSocket Streams" and USD-M futures
"Websocket Market Streams" documentation (developers.binance.com).
"""
from __future__ import annotations

import logging
import math
from typing import Any

import orjson

from ml.market.errors import MalformedMessage
from ml.market.events import Level, OrderBookDelta, OrderBookSnapshot, Trade

logger = logging.getLogger(__name__)

MarketEvent = Trade | OrderBookDelta | OrderBookSnapshot


def parse_message(payload: dict | bytes | str, symbol: str | None = None) -> MarketEvent | None:
    """Parse one Binance message into a normalized event.

    Args:
        payload: the JSON text (bytes or str) or an already decoded dict.
        symbol: instrument of a REST snapshot (e.g. "ETHUSDT"); required for snapshots, which
            carry no symbol, ignored otherwise (stream messages name their own).

    Returns:
        ``Trade``, ``OrderBookDelta`` or ``OrderBookSnapshot``; ``None`` for ignored streams.

    Raises:
        MalformedMessage: invalid JSON, not an object, or a missing / mistyped field (named).
        ValueError: a snapshot is given without ``symbol``.
    """
    msg = _decode(payload)
    if "lastUpdateId" in msg:
        if not symbol:
            raise ValueError("symbol is required to parse a depth snapshot (it carries none)")
        return parse_snapshot(msg, symbol)
    stream = msg.get("stream")
    if stream is not None:
        data = msg.get("data")
        if not isinstance(data, dict):
            raise MalformedMessage(f"stream {stream!r}: field 'data' missing or not an object")
        kind = _stream_kind(str(stream))
    else:
        data = msg
        kind = data.get("e")
    if kind == "depthUpdate":
        return parse_depth_update(data, stream)
    if kind == "trade":
        return parse_trade(data, stream)
    return None


def parse_depth_update(data: dict, stream: str | None = None) -> OrderBookDelta:
    """Parse a ``depthUpdate`` payload (spot: ``E,s,U,u,b,a``; futures adds ``T,pu``).

    ``ts_event`` is ``E`` (ms). ``prev_final_update_id`` is ``pu`` when present (futures),
    else None. Raises MalformedMessage naming the first bad field.
    """
    where = stream or "depthUpdate"
    pu = data.get("pu")
    if pu is not None and not _is_int(pu):
        raise MalformedMessage(f"{where}: field 'pu' is not an integer: {pu!r}")
    return OrderBookDelta(
        symbol=_symbol(data, stream),
        ts_event=_int(data, "E", where),
        first_update_id=_int(data, "U", where),
        final_update_id=_int(data, "u", where),
        prev_final_update_id=pu,
        bids=_levels(data, "b", where),
        asks=_levels(data, "a", where),
    )


def parse_trade(data: dict, stream: str | None = None) -> Trade:
    """Parse a ``trade`` payload (``t``, ``p``, ``q``, ``T``, ``m``); ``ts_event`` is ``T`` (ms).

    Raises MalformedMessage naming the first bad field.
    """
    where = stream or "trade"
    maker = data.get("m")
    if not isinstance(maker, bool):
        raise MalformedMessage(f"{where}: field 'm' missing or not a boolean: {maker!r}")
    return Trade(
        symbol=_symbol(data, stream),
        ts_event=_int(data, "T", where),
        trade_id=_int(data, "t", where),
        price=_decimal(data, "p", where),
        size=_decimal(data, "q", where, size=True),
        is_buyer_maker=maker,
    )


def parse_snapshot(msg: dict, symbol: str) -> OrderBookSnapshot:
    """Parse a REST depth snapshot (``lastUpdateId``, ``bids``, ``asks``; futures ``E``).

    ``ts_event`` is ``E`` (ms) when present, else None (spot). Raises MalformedMessage.
    """
    where = f"{symbol} snapshot"
    ts_event = msg.get("E")
    if ts_event is not None and not _is_int(ts_event):
        raise MalformedMessage(f"{where}: field 'E' is not an integer: {ts_event!r}")
    return OrderBookSnapshot(
        symbol=symbol.upper(),
        last_update_id=_int(msg, "lastUpdateId", where),
        bids=_levels(msg, "bids", where),
        asks=_levels(msg, "asks", where),
        ts_event=ts_event,
    )


def _decode(payload: dict | bytes | str) -> dict:
    if isinstance(payload, dict):
        return payload
    try:
        msg = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"invalid JSON: {exc}") from exc
    if not isinstance(msg, dict):
        raise MalformedMessage(f"expected a JSON object, got {type(msg).__name__}")
    return msg


def _stream_kind(stream: str) -> str | None:
    """Map a combined-stream name to the payload kind we parse ("depthUpdate", "trade")."""
    _, _, name = stream.partition("@")
    if name == "depth" or name.startswith("depth@"):  # not the depth5/10/20 partial books
        return "depthUpdate"
    if name == "trade":
        return "trade"
    return None


def _symbol(data: dict, stream: str | None) -> str:
    sym = data.get("s")
    if isinstance(sym, str) and sym:
        return sym.upper()
    if stream:
        return stream.partition("@")[0].upper()
    raise MalformedMessage("field 's' (symbol) missing and no stream name to take it from")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(data: dict, key: str, where: str) -> int:
    value = data.get(key)
    if not _is_int(value):
        state = "missing" if value is None else f"not an integer: {value!r}"
        raise MalformedMessage(f"{where}: field {key!r} {state}")
    return value


def _decimal(data: dict, key: str, where: str, size: bool = False) -> float:
    """A finite price, or with ``size`` a finite size >= 0 (``float()`` alone takes "NaN", "1e999")."""
    value = data.get(key)
    try:
        number = float(value)  # Binance sends decimal strings
    except (TypeError, ValueError, OverflowError):
        state = "missing" if value is None else f"not a decimal string: {value!r}"
        raise MalformedMessage(f"{where}: field {key!r} {state}") from None
    if not math.isfinite(number) or (size and number < 0):
        raise MalformedMessage(f"{where}: field {key!r} not a finite {'size >= 0' if size else 'price'}: {value!r}")
    return number


def _levels(data: dict, key: str, where: str) -> tuple[Level, ...]:
    raw = data.get(key)
    if not isinstance(raw, list):
        state = "missing" if raw is None else f"not a list: {type(raw).__name__}"
        raise MalformedMessage(f"{where}: field {key!r} {state}")
    try:
        if not all(isinstance(item, list | tuple) for item in raw):  # a 2-character string would unpack too
            raise TypeError("a level is not a [price, qty] list")
        levels = tuple([(float(p), float(q)) for p, q in raw])
    except (TypeError, ValueError, OverflowError) as exc:
        raise MalformedMessage(
            f"{where}: field {key!r} must hold [price, qty] decimal-string pairs ({exc})"
        ) from None
    # nan / inf propagate through the sum; one min() finds a negative size.
    if levels and (not math.isfinite(sum(p + q for p, q in levels)) or min(q for _, q in levels) < 0):
        raise MalformedMessage(f"{where}: field {key!r} holds a non-finite price or a negative / non-finite qty")
    return levels
