"""Binance spot REST endpoints of the replay venue (``/api/v3/...``; USD-M ``/fapi/v1/...``), see ``replay_server``.

Shapes and error codes follow Binance's spot REST API ("General endpoints", "Market data
endpoints", "Error codes"): depth ``{"lastUpdateId", "bids", "asks"}`` with decimal strings,
kline arrays of 12 fields, errors as HTTP 400 ``{"code": -1121, "msg": "Invalid symbol."}``.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from apps.market.venues.replay_data import INTERVALS_MS, SymbolState, book_levels, build_klines, load_history
from ml.market.orderbook import OrderBook
from ml.market.recording import default_data_dir

if TYPE_CHECKING:
    from apps.market.venues.replay_server import ReplayServer

logger = logging.getLogger(__name__)


class BinanceError(Exception):
    """A request error answered as Binance does: HTTP 400 ``{"code": code, "msg": msg}``."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


class RestApi:
    """Handlers over a running :class:`ReplayServer`'s state (truth books, clock, faults)."""

    def __init__(self, server: ReplayServer) -> None:
        self.server = server

    def add_routes(self, app: web.Application) -> None:
        """Register ``/api/v3/{ping,time,exchangeInfo,depth,klines}`` on ``app``."""
        app.middlewares.append(self._errors)
        base = "/fapi/v1" if self.server.market == "usdm" else "/api/v3"  # USD-M: same shapes under /fapi/v1
        app.router.add_get(f"{base}/ping", self._ping)
        app.router.add_get(f"{base}/time", self._time)
        app.router.add_get(f"{base}/exchangeInfo", self._exchange_info_handler)
        app.router.add_get(f"{base}/depth", self._depth)
        app.router.add_get(f"{base}/klines", self._klines)

    @web.middleware
    async def _errors(self, request: web.Request, handler) -> web.StreamResponse:
        if request.path.startswith(("/api/", "/fapi/")):
            self.server.stats["rest_requests"] += 1
        fault = self.server.take_http_fault(request.path)
        if fault is not None and fault["status"]:
            return await self._http_fault(fault)
        if fault is not None:
            await asyncio.sleep(fault["delay"])
        try:
            return await handler(request)
        except BinanceError as exc:
            self.server.stats["rest_errors"] += 1
            return _json({"code": exc.code, "msg": exc.msg}, status=400)

    async def _http_fault(self, fault: dict) -> web.Response:
        """An injected HTTP error as Binance sends it ("Error codes", "LIMITS": 429 with
        ``Retry-After`` seconds, 418 for an IP ban, 5xx), or a held response (client timeout)."""
        if fault["delay"]:
            await asyncio.sleep(fault["delay"])
        status = fault["status"]
        headers = {"Retry-After": str(fault["retry_after"])} if fault["retry_after"] is not None else {}
        if status in (429, 418):
            body = {"code": -1003, "msg": "Too much request weight used; current limit is 6000 request weight "
                                          "per 1 MINUTE. Please use WebSocket Streams for live updates."}
        elif status >= 500:
            body = {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."}
        else:
            body = {"code": -1000, "msg": "An unknown error occurred while processing the request."}
        return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                            content_type="application/json")

    async def _ping(self, request: web.Request) -> web.Response:
        return _json({})

    async def _time(self, request: web.Request) -> web.Response:
        return _json({"serverTime": self.server.clock_ms()})

    async def _exchange_info_handler(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol")
        if not symbol:
            return web.Response(body=self.server.exchange_info, content_type="application/json")
        info = orjson.loads(self.server.exchange_info)
        info["symbols"] = [s for s in info["symbols"] if s.get("symbol") == symbol.upper()]
        if not info["symbols"]:
            raise BinanceError(-1121, "Invalid symbol.")
        return _json(info)

    async def _depth(self, request: web.Request) -> web.Response:
        state = self._state(request)
        limit = _int_param(request, "limit", 100, 1, 5000)
        if self.server.stale:
            snapshot = state.snapshot
            if snapshot is None:
                raise BinanceError(-1121, "Invalid symbol.")
            self.server.faults["stale_snapshots"] += 1
            book = OrderBook()
            book.apply_snapshot(snapshot)
            last_id = snapshot.last_update_id
        else:
            book, last_id = state.truth, state.truth_id
            if last_id is None:
                raise BinanceError(-1121, "Invalid symbol.")  # no snapshot recorded
        if self.server.market == "usdm":  # futures snapshots carry message (E) and transaction (T) time
            now = self.server.clock_ms()
            return _json({"lastUpdateId": last_id, "E": now, "T": now, **book_levels(book, limit)})
        return _json({"lastUpdateId": last_id, **book_levels(book, limit)})

    async def _klines(self, request: web.Request) -> web.Response:
        state = self._state(request)
        interval = request.query.get("interval")
        if not interval:
            raise BinanceError(-1102, "Mandatory parameter 'interval' was not sent, was empty/"
                                      "null, or malformed.")
        if interval not in INTERVALS_MS:
            raise BinanceError(-1120, "Invalid interval.")
        limit = _int_param(request, "limit", 500, 1, 1000)
        start = _int_param(request, "startTime", None, 0, 2**63)
        end = _int_param(request, "endTime", None, 0, 2**63)
        history = None if self.server.market == "usdm" else \
            load_history(self.server.data_dir or default_data_dir(), state.symbol, interval)
        rows = build_klines(state, self.server.clock_ms(), INTERVALS_MS[interval], start, end, limit, history)
        return _json(rows)

    def _state(self, request: web.Request) -> SymbolState:
        symbol = request.query.get("symbol")
        if not symbol:
            raise BinanceError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/"
                                      "null, or malformed.")
        state = self.server.states.get(symbol.upper())
        if state is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return state


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _int_param(request: web.Request, name: str, default: int | None, low: int, high: int
               ) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; "
                                  f"legal range is '^[0-9]{{1,20}}$'.") from None
    if not low <= value <= high:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; "
                                  f"legal range is '{low}-{high}'.")
    return value
