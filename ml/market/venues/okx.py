"""OKX v5 public websocket: ``books`` (400 levels, snapshot + update) and ``trades``.

Source: OKX API v5 docs, "WebSocket / Public Channel / Order book channel" and "Trades channel"
(www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel), checked against
the recorded messages in ``shared/data/ws_samples/cryptofeed_OKX.jsonl.zst`` (2022, before
OKX added ``seqId``).

Message: ``{"arg": {"channel", "instId"}, "action": "snapshot"|"update", "data": [{"asks",
"bids", "ts", "checksum", "seqId"?, "prevSeqId"?}]}``; a level is ``[px, sz, "0", n_orders]``.

Order book mapping: ``ts_event = ts`` (ms). With sequence ids (OKX since 2022):
``first_update_id = final_update_id = seqId``, ``prev_final_update_id = prevSeqId`` (-1 on a
snapshot), so :func:`book_continues` is the Binance futures ``pu`` rule. Without them (older
messages, the recorded sample): ``first_update_id = 0``, ``final_update_id`` the CRC32
``checksum`` as unsigned 32 bits (verify it with :func:`book_checksum`), ``prev = None``.
A snapshot becomes an ``OrderBookSnapshot`` with ``last_update_id = seqId`` (or 0).

Trades: ``tradeId``, ``px``, ``sz`` (contracts for futures/swaps), ``side`` the taker side
(``sell`` -> ``is_buyer_maker``), ``ts`` (ms). Symbols: ``BTC-USDT`` -> ``BTCUSDT``,
``UNI-USD-SWAP`` -> ``UNIUSD``, ``BTC-USD-220527`` -> ``BTCUSD_220527``.
"""
from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from decimal import Decimal

from ml.market.errors import MalformedMessage
from ml.market.events import Level, OrderBookDelta, OrderBookSnapshot, Trade
from ml.market.venues import VenueEvent
from ml.market.venues import _fields as f
from ml.market.venues.symbols import normalize_symbol

logger = logging.getLogger(__name__)

BOOK_CHANNELS = frozenset({"books", "books-l2-tbt", "books50-l2-tbt"})


def parse_message(payload: dict | bytes | str) -> list[VenueEvent] | None:
    """Parse one OKX v5 public message (module docstring for the mapping).

    Returns ``[OrderBookSnapshot]`` / ``[OrderBookDelta]`` for a book message, one Trade per
    trade, or None for other channels and events (``subscribe``, ``error``).
    Raises MalformedMessage naming the bad field.
    """
    msg = f.decode_object(payload)
    if "event" in msg or "data" not in msg:
        return None
    arg = f.obj(msg, "arg", "message")
    channel = arg.get("channel")
    if not isinstance(channel, str):
        raise MalformedMessage(f"field 'channel' {'missing' if channel is None else 'not a string'}: {arg!r}"[:200])
    where = f"{channel}:{arg.get('instId')}"
    if channel in BOOK_CHANNELS:
        return [parse_book(msg, arg, where)]
    if channel == "trades":
        return parse_trades(msg, where)
    return None


def parse_book(msg: dict, arg: dict, where: str) -> OrderBookSnapshot | OrderBookDelta:
    """One ``books`` message (``data`` holds exactly one book object)."""
    symbol = normalize_symbol(f.text(arg, "instId", where))
    items = f.array(msg, "data", where)
    if len(items) != 1 or not isinstance(items[0], dict):
        raise MalformedMessage(f"{where}: field 'data' must hold one book object")
    data = items[0]
    ts = f.integer(data, "ts", where)
    bids, asks = f.levels(data.get("bids"), where, "bids"), f.levels(data.get("asks"), where, "asks")
    if "seqId" in data:
        first = final = f.integer(data, "seqId", where)
        prev = f.integer(data, "prevSeqId", where)
    else:
        first, prev = 0, None
        final = f.integer(data, "checksum", where) & 0xFFFFFFFF
    action = msg.get("action")
    if action == "snapshot":
        return OrderBookSnapshot(symbol, final if first else 0, bids, asks, ts_event=ts)
    if action == "update":
        return OrderBookDelta(symbol, ts, first, final, prev, bids, asks)
    raise MalformedMessage(f"{where}: field 'action' must be snapshot or update, got {action!r}")


def parse_trades(msg: dict, where: str) -> list[Trade]:
    """A ``trades`` message: ``data`` is a list of ``{instId, tradeId, px, sz, side, ts}``."""
    trades = []
    for item in f.array(msg, "data", where):
        if not isinstance(item, dict):
            raise MalformedMessage(f"{where}: field 'data' must hold trade objects, got {item!r}")
        side = item.get("side")
        if side not in ("buy", "sell"):
            raise MalformedMessage(f"{where}: field 'side' must be buy or sell, got {side!r}")
        trades.append(Trade(
            symbol=normalize_symbol(f.text(item, "instId", where)),
            ts_event=f.integer(item, "ts", where),
            trade_id=f.integer(item, "tradeId", where),
            price=f.price(item.get("px"), where, "px"),
            size=f.size(item.get("sz"), where, "sz"),
            is_buyer_maker=side == "sell",
        ))
    return trades


def book_continues(previous_seq_id: int | None, event: OrderBookSnapshot | OrderBookDelta) -> bool:
    """OKX book rule: a snapshot resets the book; an update's ``prevSeqId`` must equal the
    previous message's ``seqId`` (an update with no change may repeat the same ``seqId``).

    Only for messages that carry sequence ids (``first_update_id != 0``); older messages are
    checked with :func:`book_checksum` instead. Source: OKX v5 docs, order book channel,
    "seqId / prevSeqId" notes.
    """
    if isinstance(event, OrderBookSnapshot):
        return True
    return previous_seq_id is not None and event.prev_final_update_id == previous_seq_id


def book_checksum(bids: Sequence[Level], asks: Sequence[Level]) -> int:
    """OKX CRC32 of a local book, to compare with a message's ``checksum`` (as unsigned 32 bits).

    ``bids`` best first (descending), ``asks`` best first (ascending). The checked string joins
    ``bid_px:bid_sz:ask_px:ask_sz`` for the top 25 levels of each side (a side that runs out is
    skipped), numbers written as OKX writes them (shortest decimal, no exponent).
    Source: OKX v5 docs, order book channel, "Checksum".
    """
    parts: list[str] = []
    for i in range(25):
        for side in (bids, asks):
            if i < len(side):
                parts.extend((_okx_number(side[i][0]), _okx_number(side[i][1])))
    return zlib.crc32(":".join(parts).encode())


def _okx_number(value: float) -> str:
    text = format(Decimal(repr(value)), "f")
    return text[:-2] if text.endswith(".0") else text
