"""MEXC spot v3 websocket, JSON channels: ``spot@public.deals.v3.api@<SYMBOL>`` (trades) and
``spot@public.increase.depth.v3.api@<SYMBOL>`` (diff depth).

Written from the documentation only: there is no recorded MEXC message in the data directory.
Sources: MEXC spot v3 API docs (mexcdevelop.github.io/apidocs/spot_v3_en and the Chinese edition,
"Websocket Market Streams": Trade Streams / 逐笔交易, Diff.Depth Stream / 增量深度信息, and the
section on maintaining a local order book copy, present in the 2022-2023 editions; repository
mexcdevelop/apidocs) and the message examples quoted in ccxt's ``pro/mexc`` (handleTrades,
handleOrderBook, getCacheIndex). MEXC has since moved these channels to protobuf
(``...v3.api.pb@...``); this module parses the JSON form only.

Messages: ``{"c": channel, "d": {...,"e": event type}, "s": "BTCUSDT", "t": event time ms}``.

- deals: ``d.deals`` = ``[{"p": price, "v": quantity, "S": trade type 1 buy | 2 sell,
  "t": trade time ms}]``. ``S`` is read as the taker side (as ccxt reads it: 2 ->
  ``is_buyer_maker``); no trade id is sent, so ``trade_id = 0``.
- increase depth: ``d.asks`` / ``d.bids`` = ``[{"p", "v"}]`` (absolute quantity, 0 deletes; a
  message carries only the side(s) that changed), ``d.r`` the book version (a decimal string;
  some documented examples name it ``version``, accepted too). Mapping: ``first_update_id =
  final_update_id = r``, ``prev_final_update_id = None``, ``ts_event = t``. Rule:
  :func:`book_continues`.
"""
from __future__ import annotations

import logging

from ml.market.errors import MalformedMessage
from ml.market.events import Level, OrderBookDelta, OrderBookSnapshot, Trade
from ml.market.venues import VenueEvent
from ml.market.venues import _fields as f
from ml.market.venues.symbols import normalize_symbol

logger = logging.getLogger(__name__)

DEALS = "spot@public.deals.v3.api"
INCREASE_DEPTH = "spot@public.increase.depth.v3.api"


def parse_message(payload: dict | bytes | str) -> list[VenueEvent] | None:
    """Parse one MEXC spot v3 JSON message (module docstring for the fields).

    Returns one Trade per deal, ``[OrderBookDelta]`` for a diff-depth message, or None for
    other channels and replies (``{"id": 0, "code": 0, "msg": ...}``, ``PONG``).
    Raises MalformedMessage naming the bad field.
    """
    msg = f.decode_object(payload)
    channel = msg.get("c")
    if not isinstance(channel, str):
        return None
    kind = channel.rpartition("@")[0]
    if kind not in (DEALS, INCREASE_DEPTH):
        return None
    data = f.obj(msg, "d", channel)
    symbol = normalize_symbol(f.text(msg, "s", channel))
    if kind == DEALS:
        return [_deal(item, symbol, channel) for item in f.array(data, "deals", channel)]
    version = f.integer(data, "version" if "r" not in data and "version" in data else "r", channel)
    return [OrderBookDelta(symbol, f.integer(msg, "t", channel), version, version, None,
                           _levels(data, "bids", channel), _levels(data, "asks", channel))]


def book_continues(previous_version: int | None, event: OrderBookSnapshot | OrderBookDelta) -> bool:
    """MEXC rule: each event's version ``r`` is the previous one + 1; after a REST snapshot
    (``GET /api/v3/depth``, ``lastUpdateId``) the first applied event is the one with
    ``r > lastUpdateId`` (earlier ones are dropped). Returns False on a gap: reload the snapshot.
    Source: MEXC spot v3 docs, local order book section, step 6 ("each new event's version
    should be exactly the previous event's version + 1, else a message was lost").
    """
    if isinstance(event, OrderBookSnapshot):
        return True
    return previous_version is not None and event.first_update_id == previous_version + 1


def _deal(item: object, symbol: str, where: str) -> Trade:
    if not isinstance(item, dict):
        raise MalformedMessage(f"{where}: field 'deals' must hold objects, got {item!r}"[:200])
    side = item.get("S")
    if side not in (1, 2) or isinstance(side, bool):
        raise MalformedMessage(f"{where}: field 'S' must be 1 (buy) or 2 (sell), got {side!r}")
    return Trade(symbol=symbol, ts_event=f.integer(item, "t", where), trade_id=0,
                 price=f.price(item.get("p"), where, "p"), size=f.size(item.get("v"), where, "v"),
                 is_buyer_maker=side == 2)


def _levels(data: dict, key: str, where: str) -> tuple[Level, ...]:
    raw = data.get(key, [])  # a message carries only the side(s) that changed
    if not isinstance(raw, list):
        raise MalformedMessage(f"{where}: field {key!r} not a list: {raw!r}"[:200])
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise MalformedMessage(f"{where}: field {key!r} must hold {{p, v}} objects, got {item!r}"[:200])
        out.append((f.price(item.get("p"), where, "p"), f.size(item.get("v"), where, "v")))
    return tuple(out)
