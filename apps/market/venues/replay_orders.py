"""Binance spot signed order endpoints on the replay venue, so a live client (ccxt, URLs
overridden) trades against the recorded session on loopback with no network.

Endpoints (Binance spot REST, "Trading endpoints" and "Account endpoints"):
``POST /api/v3/order`` (MARKET and LIMIT GTC; ``newOrderRespType`` FULL with ``fills``),
``GET /api/v3/order`` and ``DELETE /api/v3/order`` (by ``orderId`` or ``origClientOrderId``),
``GET /api/v3/openOrders`` and ``GET /api/v3/account`` (balances).

Security ("Endpoint security type", "SIGNED endpoint security"): the key comes in the
``X-MBX-APIKEY`` header; ``signature`` = hex HMAC-SHA256 (secret key) of the total parameters,
i.e. the query string followed by the request body, without the ``signature`` parameter;
``timestamp`` must satisfy ``timestamp < now + 1000`` and ``now - timestamp <= recvWindow``
(default 5000 ms, max 60000). "now" is the wall clock, as the client stamps requests with its own
clock (the replay clock serves market data only). Errors as Binance: -2014 / -2015 (HTTP 401),
-1022 bad signature, -1021 outside recvWindow, -2010 "Duplicate order sent." for a client order
id already open, -2013 "Order does not exist.", -2011 "Unknown order sent." on cancel.

Matching: MARKET (``quantity`` in base units) walks the truth book's opposite side best first;
what the book cannot fill expires (status EXPIRED with a partial fill, as Binance does). LIMIT
fills its marketable part at once and rests the rest; resting orders are not matched against the
replayed trades later (they stay open until canceled). Commission 0.1% in the received asset.

Fault: :meth:`OrderApi.lose_responses` executes the next n order requests and answers HTTP 503,
so a client sees a failure for an order that did reach the venue (the case that doubles orders
unless the client order id is checked).
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import time
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from apps.market.venues.replay_rest import BinanceError
from ml.execution.paper import walk_levels

if TYPE_CHECKING:
    from apps.market.venues.replay_server import ReplayServer

logger = logging.getLogger(__name__)

TEST_API_KEY = "replay-test-key-0123456789abcdef0123456789abcdef0123456789abcdef01234567"
TEST_API_SECRET = "replay-test-secret-fedcba9876543210fedcba9876543210fedcba9876543210fedc"
COMMISSION = 0.001
OPEN = ("NEW", "PARTIALLY_FILLED")


class AuthError(BinanceError):
    """-2014 / -2015: answered with HTTP 401 like Binance."""


class OrderApi:
    """Signed order endpoints over a :class:`ReplayServer` (module docstring). ``keys`` maps API
    key -> secret; ``balances`` asset -> free amount at start."""

    def __init__(self, server: ReplayServer, keys: dict[str, str] | None = None,
                 balances: dict[str, float] | None = None) -> None:
        self.server = server
        self.keys = keys if keys is not None else {TEST_API_KEY: TEST_API_SECRET}
        self.balances = dict(balances or {"USDT": 100_000.0, "ETH": 10.0, "BTC": 1.0})
        self.orders: dict[int, dict] = {}
        self.by_client_id: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._lose = 0
        self.stats = {"orders": 0, "lost_responses": 0, "rejected": 0}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v3/order", self._new_order)
        app.router.add_get("/api/v3/order", self._get_order)
        app.router.add_delete("/api/v3/order", self._cancel_order)
        app.router.add_get("/api/v3/openOrders", self._open_orders)
        app.router.add_get("/api/v3/account", self._account)

    def lose_responses(self, n: int = 1) -> None:
        """Execute the next ``n`` new-order requests but answer each with HTTP 503."""
        self._lose += n

    # -- handlers ----------------------------------------------------------------------------

    async def _new_order(self, request: web.Request) -> web.Response:
        try:
            params = await self._signed(request)
        except AuthError as exc:
            return _json({"code": exc.code, "msg": exc.msg}, 401)
        symbol = _required(params, "symbol").upper()
        state = self.server.states.get(symbol)
        if state is None:
            raise BinanceError(-1121, "Invalid symbol.")
        side, kind = _required(params, "side").upper(), _required(params, "type").upper()
        if side not in ("BUY", "SELL"):
            raise BinanceError(-1117, "Invalid side.")
        if kind not in ("MARKET", "LIMIT"):
            raise BinanceError(-1116, "Invalid orderType.")
        quantity = _decimal_param(params, "quantity")
        price = _decimal_param(params, "price") if kind == "LIMIT" else None
        coid = params.get("newClientOrderId") or f"replay-{next(self._ids)}"
        known = self.by_client_id.get(coid)
        if known is not None and self.orders[known]["status"] in OPEN:
            raise BinanceError(-2010, "Duplicate order sent.")
        base, quote = symbol[:-4], symbol[-4:]
        need = quantity * (price or state.truth.best_ask() or 0) if side == "BUY" else quantity
        if self.balances.get(quote if side == "BUY" else base, 0.0) < need:
            self.stats["rejected"] += 1
            raise BinanceError(-2010, "Account has insufficient balance for requested action.")
        order = self._execute(symbol, side, kind, quantity, price, coid, state)
        self.stats["orders"] += 1
        if self._lose:
            self._lose -= 1
            self.stats["lost_responses"] += 1
            return web.Response(status=503, text="Service Unavailable")
        return _json({**_order_json(order), "transactTime": order["time"], "workingTime": order["time"],
                      "fills": order["fills"]})

    async def _get_order(self, request: web.Request) -> web.Response:
        try:
            params = await self._signed(request)
        except AuthError as exc:
            return _json({"code": exc.code, "msg": exc.msg}, 401)
        order = self._find(params, -2013, "Order does not exist.")
        return _json(_order_json(order) | {"time": order["time"], "updateTime": order["update"], "isWorking": True,
                                           "stopPrice": "0.00000000", "icebergQty": "0.00000000",
                                           "origQuoteOrderQty": "0.00000000"})

    async def _cancel_order(self, request: web.Request) -> web.Response:
        try:
            params = await self._signed(request)
        except AuthError as exc:
            return _json({"code": exc.code, "msg": exc.msg}, 401)
        order = self._find(params, -2011, "Unknown order sent.")
        if order["status"] not in OPEN:
            raise BinanceError(-2011, "Unknown order sent.")
        order["status"], order["update"] = "CANCELED", self._now()
        return _json(_order_json(order) | {"origClientOrderId": order["clientOrderId"], "transactTime": order["update"]})

    async def _open_orders(self, request: web.Request) -> web.Response:
        try:
            params = await self._signed(request)
        except AuthError as exc:
            return _json({"code": exc.code, "msg": exc.msg}, 401)
        symbol = (params.get("symbol") or "").upper()
        rows = [o for o in self.orders.values() if o["status"] in OPEN and (not symbol or o["symbol"] == symbol)]
        return _json([_order_json(o) | {"time": o["time"], "updateTime": o["update"], "isWorking": True} for o in rows])

    async def _account(self, request: web.Request) -> web.Response:
        try:
            await self._signed(request)
        except AuthError as exc:
            return _json({"code": exc.code, "msg": exc.msg}, 401)
        locked: dict[str, float] = {}
        for o in self.orders.values():
            if o["status"] in OPEN:
                asset, amount = _locked(o)
                locked[asset] = locked.get(asset, 0.0) + amount
        assets = sorted(set(self.balances) | set(locked))
        return _json({"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
                      "canTrade": True, "canWithdraw": False, "canDeposit": False, "brokered": False,
                      "requireSelfTradePrevention": False, "preventSor": False, "updateTime": self._now(),
                      "accountType": "SPOT", "permissions": ["SPOT"], "uid": 1,
                      "balances": [{"asset": a, "free": f"{self.balances.get(a, 0.0):.8f}",
                                    "locked": f"{locked.get(a, 0.0):.8f}"} for a in assets]})

    # -- matching and state ------------------------------------------------------------------

    def _execute(self, symbol: str, side: str, kind: str, quantity: float, price: float | None, coid: str, state) -> dict:
        now = self._now()
        levels = state.truth.levels("ask" if side == "BUY" else "bid", 5000)
        fills = walk_levels(levels, quantity, COMMISSION, price, side) if levels else []
        order = {"symbol": symbol, "orderId": next(self._ids), "clientOrderId": coid, "price": price or 0.0,
                 "origQty": quantity, "executedQty": 0.0, "quote": 0.0, "status": "NEW", "type": kind, "side": side,
                 "timeInForce": "GTC", "time": now, "update": now, "fills": []}
        base, quote = symbol[:-4], symbol[-4:]
        for f in fills:
            cost = f.price * f.size
            order["executedQty"] += f.size
            order["quote"] += cost
            if side == "BUY":
                commission, asset = f.size * COMMISSION, base
                self.balances[quote] = self.balances.get(quote, 0.0) - cost
                self.balances[base] = self.balances.get(base, 0.0) + f.size - commission
            else:
                commission, asset = cost * COMMISSION, quote
                self.balances[base] = self.balances.get(base, 0.0) - f.size
                self.balances[quote] = self.balances.get(quote, 0.0) + cost - commission
            order["fills"].append({"price": f"{f.price:.8f}", "qty": f"{f.size:.8f}", "commission": f"{commission:.8f}",
                                   "commissionAsset": asset, "tradeId": next(self._trade_ids)})
        filled = order["executedQty"] >= quantity - 1e-12
        if filled:
            order["status"] = "FILLED"
        elif kind == "MARKET":
            order["status"] = "EXPIRED"
        elif order["executedQty"] > 0:
            order["status"] = "PARTIALLY_FILLED"
        self.orders[order["orderId"]] = order
        self.by_client_id[coid] = order["orderId"]
        return order

    def _find(self, params: dict, code: int, msg: str) -> dict:
        if "orderId" in params:
            order = self.orders.get(int(params["orderId"]))
        elif "origClientOrderId" in params:
            order = self.orders.get(self.by_client_id.get(params["origClientOrderId"], -1))
        else:
            raise BinanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if order is None or order["symbol"] != (params.get("symbol") or "").upper():
            raise BinanceError(code, msg)
        return order

    async def _signed(self, request: web.Request) -> dict[str, str]:
        """Check key, signature and timestamp (module docstring); returns the parameters."""
        key = request.headers.get("X-MBX-APIKEY", "")
        if not key:
            raise AuthError(-2014, "API-key format invalid.")
        secret = self.keys.get(key)
        if secret is None:
            raise AuthError(-2015, "Invalid API-key, IP, or permissions for action.")
        query = request.rel_url.raw_query_string
        body = (await request.read()).decode() if request.can_read_body else ""
        total = "&".join(p for p in (query, body) if p)
        parts = [p for p in total.split("&") if p]
        signature = next((p.partition("=")[2] for p in parts if p.startswith("signature=")), "")
        signed = "&".join(p for p in parts if not p.startswith("signature="))
        # Binance signs "query string + body" concatenated; clients send one or the other.
        expected = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not signature or not hmac.compare_digest(signature.lower(), expected):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        params = dict(request.query) | dict(await request.post())
        window = int(params.get("recvWindow", 5000))
        if not 0 < window <= 60_000:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        ts, now = int(_required(params, "timestamp")), int(time.time() * 1000)
        if not (ts < now + 1000 and now - ts <= window):
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
        return params

    @staticmethod
    def _now() -> int:
        return int(time.time() * 1000)


def _order_json(o: dict) -> dict:
    return {"symbol": o["symbol"], "orderId": o["orderId"], "orderListId": -1, "clientOrderId": o["clientOrderId"],
            "price": f"{o['price']:.8f}", "origQty": f"{o['origQty']:.8f}", "executedQty": f"{o['executedQty']:.8f}",
            "cummulativeQuoteQty": f"{o['quote']:.8f}", "status": o["status"], "timeInForce": o["timeInForce"],
            "type": o["type"], "side": o["side"], "selfTradePreventionMode": "NONE"}


def _locked(o: dict) -> tuple[str, float]:
    left = o["origQty"] - o["executedQty"]
    return (o["symbol"][-4:], left * o["price"]) if o["side"] == "BUY" else (o["symbol"][:-4], left)


def _required(params: dict, name: str) -> str:
    value = params.get(name)
    if value in (None, ""):
        raise BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def _decimal_param(params: dict, name: str) -> float:
    raw = _required(params, name)
    try:
        value = float(raw)
    except ValueError:
        raise BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                  "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.") from None
    if not value > 0:
        raise BinanceError(-1013, f"Invalid {name}.")
    return value


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
