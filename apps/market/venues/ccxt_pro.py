"""Bybit spot and MEXC spot market data on ccxt (REST) and ccxt.pro (websocket), behind LiveVenue's interface.

:class:`CcxtProVenue` is what :class:`~apps.market.venues.live.LiveVenue` is for Binance: ``events()``
(arrival order: :class:`OrderBookSnapshot`, :class:`Trade`, and :class:`StreamGap` markers after every
(re)connect, exactly as LiveVenue marks them), ``snapshot(symbol)``, ``rest``, ``counts``, ``status``,
``close()``, ``symbols``, ``venue`` and ``sync_rule``. ccxt.pro keeps each order book itself, so the
venue hands over whole books (the top ``depth`` levels a side after every update, ``last_update_id`` =
the book's nonce) and its ``sync_rule`` is "snapshot" (``ml.market.sync``).

Protocols (ccxt.pro speaks them; we check what we rely on):

- Bybit v5 public websocket (bybit-exchange.github.io/docs/v5/websocket/public/orderbook, .../trade,
  "Connect": ``wss://stream.bybit.com/v5/public/spot``): ``{"op": "subscribe", "args": [topics]}``;
  ``orderbook.{depth}.{SYMBOL}`` sends a ``snapshot`` then ``delta`` messages, each with ``u`` (update
  id, +1 per message of the topic) and ``seq``; "a snapshot resets the book" (also the ``u == 1`` one
  after a service restart). Every book / trade frame is checked with :mod:`ml.market.venues.bybit`
  before ccxt sees it; a delta whose ``u`` is not the previous one + 1 is a sequence gap: the
  connection is recycled (Bybit sends a new snapshot on subscribe). The nonce is Bybit's ``u``, plus
  an offset after ``u`` restarts lower (ids stay increasing for the synchronizer). Bybit asks for a
  ``{"op": "ping"}`` every 20 s; ccxt.pro sends one every 18 s (``keepalive_ms``) and drops a
  connection that misses two pongs.
- MEXC spot v3 (mexc.com/api-docs/spot-v3/websocket-market-streams): ccxt.pro 4.5 subscribes to the
  protobuf channels (``spot@public.aggre.depth.v3.api.pb@100ms@SYMBOL``, ``...aggre.deals...``),
  decodes them with the ``protobuf`` package and syncs the book from a REST snapshot by version
  (its ``load_order_book``). Without ``protobuf`` installed the venue refuses to start
  (VenuePermanentError). Untested against MEXC traffic: no recording exists.

Connections, reconnects and gaps follow :mod:`~apps.market.venues.binance_ws`: a dropped connection,
an idle one (no frame for ``idle_timeout_s``) or one past ``max_age_s`` is closed and reopened;
reconnects wait :class:`~apps.market.venues.ccxt_rest.Backoff` (full jitter, reset once a connection
lived ``stable_after_s``), a rotation reconnects at once. Endpoints: ``GOGO_BYBIT_REST_URL`` /
``GOGO_BYBIT_WS_URL``, ``GOGO_MEXC_REST_URL`` / ``GOGO_MEXC_WS_URL`` (scheme + host; ccxt's paths
are kept), defaulting to the official public endpoints.
"""
from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import ccxt
import ccxt.pro

from apps.market.venues.binance_ws import StreamConfig
from apps.market.venues.ccxt_rest import (
    Backoff,
    RetryingRest,
    VenueError,
    VenuePermanentError,
    VenueTemporaryError,
    point_urls,
)
from apps.market.venues.live import VenueEndpoints, stream_config_from_settings
from apps.market.venues.threaded import VENUE_KEY, ThreadedVenue, now_ms
from ml.market.errors import MalformedMessage
from ml.market.events import Candle, OrderBookSnapshot, Trade
from ml.market.venues import bybit as bybit_parser

logger = logging.getLogger(__name__)

VENUES = ("bybit", "mexc")
OFFICIAL = {"bybit": ("https://api.bybit.com", "wss://stream.bybit.com"),
            "mexc": ("https://api.mexc.com", "wss://wbs-api.mexc.com")}
MAX_REST_DEPTH = {"bybit": 200, "mexc": 5000}  # GET /v5/market/orderbook spot [1, 200]; /api/v3/depth <= 5000
TIMEFRAMES = ("1m", "1h", "1d")  # neither venue serves 1 s candles


def endpoints_from_settings(venue: str) -> VenueEndpoints:
    """``GOGO_<VENUE>_REST_URL`` / ``_WS_URL`` (module docstring); ValueError for another venue."""
    from django.conf import settings

    if venue not in VENUES:
        raise ValueError(f"venue must be one of {VENUES}, got {venue!r}")
    prefix = f"GOGO_{venue.upper()}"
    return VenueEndpoints(rest_url=getattr(settings, f"{prefix}_REST_URL", OFFICIAL[venue][0]),
                          ws_url=getattr(settings, f"{prefix}_WS_URL", OFFICIAL[venue][1]))


def point_ws_urls(api: dict | str, ws_url: str) -> dict | str:
    """A copy of ccxt's ``urls["api"]["ws"]`` with every ws(s) URL moved to ``ws_url``'s scheme and host,
    keeping its path (``/v5/public/spot``, ``/ws``)."""
    if isinstance(api, dict):
        return {key: point_ws_urls(value, ws_url) for key, value in api.items()}
    if isinstance(api, str) and api.startswith(("ws://", "wss://")):
        return ws_url.rstrip("/") + urlsplit(api).path
    return api


def _configure(exchange: ccxt.Exchange, venue: str, endpoints: VenueEndpoints) -> ccxt.Exchange:
    """Spot markets only (one instruments-info request on Bybit), endpoints moved to ``endpoints``."""
    ws = exchange.urls["api"].get("ws")
    exchange.urls["api"] = point_urls({k: v for k, v in exchange.urls["api"].items() if k != "ws"}, endpoints.rest_url)
    if ws is not None:
        exchange.urls["api"]["ws"] = point_ws_urls(ws, endpoints.ws_url)
    if venue == "bybit":
        exchange.options["fetchMarkets"] = {**exchange.options.get("fetchMarkets", {}), "types": ["spot"]}
    else:
        exchange.options["fetchMarkets"] = {"types": {"spot": True, "swap": {"linear": False, "inverse": False}}}
    return exchange


def market_of(markets_by_id: dict, venue: str, symbol: str) -> str:
    """The ccxt spot symbol ("ETH/USDT") of our ``symbol`` ("ETHUSDT"); VenuePermanentError if the venue
    lists no such spot market."""
    found = [m["symbol"] for m in markets_by_id.get(symbol.upper(), []) if m.get("spot")]
    if not found:
        raise VenuePermanentError(venue, f"unknown symbol {symbol!r}: no spot market with that id on {venue}")
    return found[0]


class CcxtRest(RetryingRest):
    """Bybit / MEXC spot public REST through sync ccxt, with BinanceRest's error policy.

    ``depth`` (``fetch_order_book``) and ``candles`` (``fetch_ohlcv``) have the signatures of
    :class:`~apps.market.venues.ccxt_rest.BinanceRest`, so backfills and the Engine use either.
    Temporary (retried with :class:`Backoff`, waiting at least ``Retry-After``, then
    VenueTemporaryError): rate limits (ccxt ``DDoSProtection``: HTTP 429, Bybit 403 / retCode 10006),
    HTTP 5xx (whatever Bybit's ``retCode``), ``ExchangeNotAvailable`` / ``OnMaintenance``, timeouts,
    connection errors. Anything else (unknown symbol, bad parameter) is VenuePermanentError at once. Counts: ``requests``,
    ``rate_limited``, ``http_5xx``, ``timeouts``, ``network_errors``, ``retries``, ``permanent_errors``.
    """

    def __init__(self, *, venue: str, rest_url: str, timeout_s: float = 10.0, backoff: Backoff | None = None,
                 max_attempts: int = 5, max_retry_after_s: float = 120.0, rng: random.Random | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if venue not in VENUES:
            raise ValueError(f"venue must be one of {VENUES}, got {venue!r}")
        loopback = (urlsplit(rest_url).hostname or "") in ("127.0.0.1", "localhost", "::1")
        self.venue = venue
        exchange = _rest_class(venue)({"enableRateLimit": not loopback, "timeout": int(timeout_s * 1000),
                                         "enableLastJsonResponse": True, "enableLastResponseHeaders": True})
        self.exchange = _configure(exchange, venue, VenueEndpoints(rest_url, OFFICIAL[venue][1]))
        self.backoff, self.max_attempts, self.max_retry_after_s = backoff or Backoff(), max(1, max_attempts), max_retry_after_s
        self.rng, self.sleep = rng or random.Random(), sleep
        self.counts: Counter[str] = Counter()
        self.waits: list[float] = []

    def market(self, symbol: str) -> str:
        """The ccxt symbol of ``symbol`` (markets loaded on first use). Raises like :meth:`depth`."""
        if self.exchange.markets is None:
            self._call("load_markets", self.exchange.load_markets)
        return market_of(self.exchange.markets_by_id, self.venue, symbol)

    def depth(self, symbol: str, limit: int = 200) -> OrderBookSnapshot:
        """A REST order book snapshot (Bybit ``GET /v5/market/orderbook``, MEXC ``GET /api/v3/depth``) of
        up to ``limit`` levels a side (capped at the venue's maximum), ``last_update_id`` = Bybit ``u`` /
        MEXC ``lastUpdateId``, ``ts_event`` = the venue's ``ts`` (ms). Bybit's REST ``u`` need not be on
        the websocket topic's sequence: do not mix both in one synchronizer.
        Raises VenueTemporaryError / VenuePermanentError, MalformedMessage for a book without levels or id.
        """
        market = self.market(symbol)
        book = self._call(f"order book {symbol}", self.exchange.fetch_order_book, market,
                          min(limit, MAX_REST_DEPTH[self.venue]))
        nonce = book.get("nonce")
        if nonce is None:  # ccxt's bybit parser drops u
            nonce = ((self.exchange.last_json_response or {}).get("result") or {}).get("u")
        try:
            bids = tuple((float(p), float(a)) for p, a, *_ in book["bids"])
            asks = tuple((float(p), float(a)) for p, a, *_ in book["asks"])
            return OrderBookSnapshot(symbol.upper(), int(nonce), bids, asks, ts_event=book.get("timestamp"))
        except (TypeError, ValueError, KeyError) as exc:
            raise MalformedMessage(f"{self.venue} order book {symbol}: {exc}") from None

    def candles(self, symbol: str, timeframe: str, *, start_ms: int | None = None, end_ms: int | None = None,
                limit: int = 1000) -> list[Candle]:
        """Up to ``limit`` candles of ``timeframe`` (1m, 1h, 1d) with open time in ``[start_ms, end_ms]``
        (ms), oldest first; the last may still be open. ``quote_volume`` is the venue's turnover (Bybit
        column 6, MEXC column 7 of the raw rows), ``trade_count`` 0 (not served).
        Raises VenuePermanentError for another timeframe (no 1 s candles on Bybit / MEXC) and refused
        requests, VenueTemporaryError.
        """
        if timeframe not in TIMEFRAMES:
            self.counts["permanent_errors"] += 1
            raise VenuePermanentError(self.venue, f"{timeframe} candles are not served (have {TIMEFRAMES})")
        params = {"until": int(end_ms)} if end_ms is not None else {}
        rows = self._call(f"candles {symbol} {timeframe}", self.exchange.fetch_ohlcv, self.market(symbol), timeframe,
                          start_ms, min(limit, 1000), params)
        turnover = _turnover(self.exchange.last_json_response, 6 if self.venue == "bybit" else 7)
        out = []
        for row in rows:
            if end_ms is not None and row[0] > end_ms:
                continue
            out.append(Candle(symbol.upper(), timeframe, int(row[0]), float(row[1]), float(row[2]), float(row[3]),
                              float(row[4]), float(row[5]), turnover.get(int(row[0]), 0.0), 0))
        return out

    def _classify(self, what: str, exc: ccxt.BaseError) -> VenueError:
        detail = f"{what}: {type(exc).__name__}: {str(exc)[:200]}"
        headers = self.exchange.last_response_headers or {}
        if isinstance(exc, ccxt.DDoSProtection):
            self.counts["rate_limited"] += 1
            after = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
            return VenueTemporaryError(self.venue, detail, None, float(after) if after and after.isdigit() else None)
        status = self.exchange.last_status
        if (status is not None and status >= 500) or isinstance(exc, ccxt.ExchangeNotAvailable | ccxt.OnMaintenance):
            self.counts["http_5xx"] += 1
            return VenueTemporaryError(self.venue, detail)
        if isinstance(exc, ccxt.RequestTimeout):
            self.counts["timeouts"] += 1
            return VenueTemporaryError(self.venue, detail)
        if isinstance(exc, ccxt.NetworkError):
            self.counts["network_errors"] += 1
            return VenueTemporaryError(self.venue, detail)
        return VenuePermanentError(self.venue, detail)


def _rest_class(venue: str) -> type:
    class WithStatus(getattr(ccxt, venue)):  # ccxt keeps the headers of the last answer, not its status
        last_status: int | None = None

        def on_rest_response(self, code, reason, url, method, response_headers, response_body, request_headers,
                             request_body):
            self.last_status = code
            return super().on_rest_response(code, reason, url, method, response_headers, response_body,
                                            request_headers, request_body)

    return WithStatus


def _turnover(raw: object, column: int) -> dict[int, float]:
    """Open time (ms) -> quote volume from a raw kline body (Bybit ``result.list``, MEXC a list)."""
    rows = ((raw.get("result") or {}).get("list") if isinstance(raw, dict) else raw) or []
    out = {}
    for row in rows:
        try:
            out[int(row[0])] = float(row[column])
        except (TypeError, ValueError, IndexError):
            continue
    return out


def _ws_class(venue: str, owner: CcxtProVenue) -> type:
    """ccxt.pro's exchange with our checks in front of its message handler (never raises into ccxt's loop)."""
    base = {"bybit": ccxt.pro.bybit, "mexc": ccxt.pro.mexc}[venue]

    class Checked(base):
        def client(self, url):
            client = super().client(url)
            if not getattr(client, "gogo_checked", False):  # invalid JSON raises before handle_message
                decode = client.handle_text_or_binary_message

                def checked(data, decode=decode):
                    try:
                        decode(data)
                    except ValueError as exc:
                        owner._accept_raw(None)
                        owner._bad("malformed", None, str(data), f"invalid JSON: {exc}")

                client.handle_text_or_binary_message, client.gogo_checked = checked, True
            return client

        def handle_message(self, client, message):
            if not owner._accept_raw(message):
                return
            try:
                super().handle_message(client, message)
            except Exception as exc:  # a ccxt handler failing must not stop its receive loop
                owner._bad("malformed", None, str(message), f"ccxt handler: {type(exc).__name__}: {exc}")
                return
            owner._after_raw(message)

        def on_connected(self, client, message=None):
            super().on_connected(client, message)
            owner._on_connect()

    return Checked


class CcxtProVenue(ThreadedVenue):
    """Bybit spot (``venue="bybit"``) or MEXC spot (``"mexc"``) market data for a session (module docstring).

    Args:
        venue: "bybit" or "mexc" (ValueError otherwise).
        symbols: instruments in our form, e.g. ``["ETHUSDT", "BTCUSDT"]`` (mapped to ccxt's "ETH/USDT"
            through the venue's spot markets; an unknown one fails the stream with VenuePermanentError).
        endpoints: default :func:`endpoints_from_settings`.
        depth: levels a side of every book handed over (Bybit topics: 1, 50, 200 or 1000).
        config: reconnect / rotation / idle policy (default from ``GOGO_STREAM_*`` settings).
        keepalive_ms: ccxt.pro's ping interval (Bybit asks for 20 s at most).
        rest: a :class:`CcxtRest` (default one on ``endpoints.rest_url``).
        rng: jitter source (seed it in tests). close_delay_ms, queue_size, start: as LiveVenue.

    Attributes:
        counts: per symbol ``messages`` (venue frames), ``snapshots`` (books handed over), ``trades``,
            ``duplicates`` (a trade id already passed on), ``malformed``, ``rejected`` (impossible price /
            size), ``sequence_gaps`` (Bybit ``u`` not +1: connection recycled), ``sequence_resets``
            (``u`` restarted lower), ``stream_gaps``, ``rest_snapshots``; ``counts["_venue"]``:
            ``malformed`` without a readable symbol, ``unknown_symbol``, ``overflow``.
        status: as LiveVenue: ``state``, ``connected_at``, ``last_message_ms``, ``reconnects``,
            ``errors``, ``error``, ``messages``. ``waits``: backoff delays slept (last 100).
    """

    sync_rule = "snapshot"
    thread_suffix = "ccxtpro"

    def __init__(self, *, venue: str, symbols: Sequence[str], endpoints: VenueEndpoints | None = None,
                 depth: int = 200, config: StreamConfig | None = None, keepalive_ms: int | None = None,
                 rest: CcxtRest | None = None, rng: random.Random | None = None, close_delay_ms: int = 500,
                 queue_size: int = 200_000, snapshot_limit: int = 200, start: bool = True) -> None:
        if venue not in VENUES:
            raise ValueError(f"no ccxt.pro client for venue {venue!r}; have {VENUES}")
        if not symbols:
            raise ValueError("symbols are required")
        self._venue_init(venue=venue, symbols=symbols, queue_size=queue_size, close_delay_ms=close_delay_ms, rng=rng)
        self.depth = depth
        self.endpoints = endpoints or endpoints_from_settings(venue)
        self.config = config or stream_config_from_settings()
        self.keepalive_ms, self.snapshot_limit = keepalive_ms, snapshot_limit
        self.rest = rest or CcxtRest(venue=venue, rest_url=self.endpoints.rest_url, rng=self.rng)
        self.waits: list[float] = []
        self._u: dict[str, int] = {}  # Bybit: last u per symbol on this connection
        self._resyncing: set[str] = set()  # Bybit: a u gap seen, deltas dropped until a snapshot
        self._u_offset: dict[str, int] = {}
        self._last_id: dict[str, int] = {}  # last_update_id handed over per symbol
        self._last_trade_id: dict[str, int] = {}
        self._last_frame = time.monotonic()
        self._recycle: asyncio.Event | None = None
        self._exchange: ccxt.pro.Exchange | None = None
        self._markets: dict[str, str] = {}  # our symbol -> ccxt symbol
        self._recycle_cause = ""
        if start:
            self.start()

    # -- consumer side (events, pending, close: ThreadedVenue) -----------------------------------

    def snapshot(self, symbol: str) -> OrderBookSnapshot:
        """A REST order book snapshot of ``symbol`` (:meth:`CcxtRest.depth`; blocking, retried)."""
        snap = self.rest.depth(symbol.upper(), self.snapshot_limit)
        self.counts[symbol.upper()]["rest_snapshots"] += 1
        return snap

    def recycle(self, cause: str) -> None:
        """Close the connection and reconnect (called on the stream's loop), e.g. "sequence_gap"."""
        if self._recycle is not None and not self._recycle.is_set():
            self._recycle_cause = cause
            self._recycle.set()

    _recycle_connection = recycle

    # -- websocket thread ----------------------------------------------------------------------

    async def _main(self) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        if self._closed.is_set():
            return
        if self.venue == "mexc":
            _require_protobuf()
        exchange = _configure(_ws_class(self.venue, self)({"enableRateLimit": False}), self.venue, self.endpoints)
        if self.keepalive_ms:
            exchange.options["ws"] = {**exchange.options.get("ws", {}), "keepAlive": self.keepalive_ms}
        self._exchange = exchange
        attempt, first = 0, True
        try:
            while not self._closed.is_set():
                if not first:
                    self.status["reconnects"] += 1
                first = False
                started = time.monotonic()
                cause, error = await self._connection(exchange)
                self._on_disconnect(cause, error)
                if cause == "rotation":
                    attempt = 0
                    continue
                if time.monotonic() - started >= self.config.stable_after_s:
                    attempt = 0
                delay = self.config.backoff.delay(attempt, self.rng)
                self.waits = [*self.waits[-99:], delay]
                attempt += 1
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            pass
        finally:
            await asyncio.shield(exchange.close())

    async def _connection(self, exchange: ccxt.pro.Exchange) -> tuple[str, str]:
        """One connection: load markets if needed, watch every book and trade stream until one fails,
        the connection idles, ages out or is recycled; returns ``(cause, error text)``."""
        exchange.ws_dial_backoff = {}  # our Backoff paces reconnects, not ccxt's
        if exchange.markets is None:
            try:
                await exchange.load_markets()
            except ccxt.NetworkError as exc:
                return "connect_failed", f"markets: {type(exc).__name__}: {str(exc)[:200]}"
            except ccxt.BaseError as exc:
                raise VenuePermanentError(self.venue, f"markets refused: {type(exc).__name__}: {exc}") from exc
        self._markets = markets = {s: market_of(exchange.markets_by_id, self.venue, s) for s in self.symbols}
        self._recycle, self._last_frame, self._u, self._resyncing = asyncio.Event(), time.monotonic(), {}, set()
        for market in markets.values():
            exchange.orderbooks.pop(market, None)  # a new connection starts from the venue's snapshot
        tasks = [asyncio.create_task(self._watch_books(exchange, s, m)) for s, m in markets.items()]
        tasks += [asyncio.create_task(self._watch_trades(exchange, s, m)) for s, m in markets.items()]
        recycle = asyncio.create_task(self._recycle.wait())
        deadline = time.monotonic() + self.config.max_age_s
        try:
            while True:
                done, _ = await asyncio.wait([*tasks, recycle], timeout=1.0 if self.config.idle_timeout_s > 1 else 0.1,
                                             return_when=asyncio.FIRST_COMPLETED)
                if recycle in done:
                    return self._recycle_cause, ""
                failed = next((t for t in done if t.exception() is not None), None)
                if failed is not None:
                    exc = failed.exception()
                    if isinstance(exc, VenueError):
                        raise exc
                    cause = "disconnect" if self.status["state"] == "live" else "connect_failed"
                    return cause, f"{type(exc).__name__}: {str(exc)[:300]}"
                now = time.monotonic()
                if now >= deadline:
                    return "rotation", ""
                if now - self._last_frame > self.config.idle_timeout_s:
                    return "idle", f"no frame for {self.config.idle_timeout_s} s"
        finally:
            for task in [*tasks, recycle]:
                task.cancel()
            await asyncio.gather(*tasks, recycle, return_exceptions=True)
            await exchange.close_ws_clients()

    async def _watch_books(self, exchange: ccxt.pro.Exchange, symbol: str, market: str) -> None:
        while True:
            book = await exchange.watch_order_book(market, self.depth)
            nonce = book.get("nonce")
            if nonce is None or nonce == self._last_id.get(symbol):
                continue  # not synced yet (MEXC waits for its REST snapshot) / nothing new
            bids = tuple((float(p), float(a)) for p, a, *_ in book["bids"][: self.depth])
            asks = tuple((float(p), float(a)) for p, a, *_ in book["asks"][: self.depth])
            self._last_id[symbol] = int(nonce)
            self.counts[symbol]["snapshots"] += 1
            self._queue_event(OrderBookSnapshot(symbol, int(nonce), bids, asks, ts_event=book.get("timestamp") or now_ms()))

    async def _watch_trades(self, exchange: ccxt.pro.Exchange, symbol: str, market: str) -> None:
        while True:
            for item in await exchange.watch_trades(market):
                trade = self._trade(symbol, item)
                if trade is not None:
                    self._queue_event(trade)

    def _trade(self, symbol: str, item: dict) -> Trade | None:
        """A ccxt trade as our Trade (taker side "sell" -> ``is_buyer_maker``); None if dropped (counted)."""
        counts = self.counts[symbol]
        try:
            price, size, ts = float(item.get("price") or 0), float(item.get("amount") or 0), int(item["timestamp"])
        except (TypeError, ValueError, KeyError) as exc:
            self._bad("malformed", symbol, str(item.get("info")), f"trade: {exc}")
            return None
        if not (price > 0 and size > 0 and math.isfinite(price) and math.isfinite(size)):
            self._bad("rejected", symbol, str(item.get("info")), "non-positive or non-finite price / size")
            return None
        raw_id = str(item.get("id") or "")
        trade_id = int(raw_id) if raw_id.isdigit() else 0  # Bybit spot ids are integers; MEXC sends none
        if trade_id and trade_id <= self._last_trade_id.get(symbol, -1):
            counts["duplicates"] += 1
            return None
        if trade_id:
            self._last_trade_id[symbol] = trade_id
        counts["trades"] += 1
        return Trade(symbol, ts, trade_id, price, size, item.get("side") == "sell")

    # -- frame checks (called by ccxt's receive loop) ------------------------------------------

    def _accept_raw(self, message: object) -> bool:
        """Count a frame and check it before ccxt applies it; False drops it (module docstring)."""
        self.status["messages"] += 1
        self.status["last_message_ms"] = now_ms()
        self._last_frame = time.monotonic()
        if self.venue != "bybit" or (isinstance(message, dict) and "topic" not in message):
            return True  # MEXC (protobuf: ccxt decodes) and Bybit control replies (subscribe, pong)
        if message is None:
            return False  # invalid JSON, counted by the caller
        if not isinstance(message, dict):
            self._bad("malformed", None, str(message), "not a JSON object")
            return False
        topic = str(message["topic"])
        channel, _, rest = topic.partition(".")
        if channel not in ("orderbook", "publicTrade"):
            self.counts[VENUE_KEY]["ignored"] += 1
            return True
        symbol = rest.rpartition(".")[2].upper()
        try:
            events = bybit_parser.parse_message(message)
        except MalformedMessage as exc:
            self._bad("malformed", symbol if symbol in self.symbols else None, str(message), str(exc))
            return False
        if not events or events[0].symbol not in self.symbols:
            self._bad("unknown_symbol", None, str(message), f"topic {topic} is not subscribed")
            return False
        symbol = events[0].symbol
        self.counts[symbol]["messages"] += 1
        return channel != "orderbook" or self._book_continues(symbol, events[0])

    def _book_continues(self, symbol: str, event: object) -> bool:
        """Bybit ``u`` rule (``ml.market.venues.bybit.book_continues``); a break recycles the connection."""
        previous = self._u.get(symbol)
        if symbol in self._resyncing and type(event) is not OrderBookSnapshot:
            return False  # waiting for the new connection's snapshot
        self._resyncing.discard(symbol)
        if not bybit_parser.book_continues(previous, event):
            self.counts[symbol]["sequence_gaps"] += 1
            logger.warning("%s %s: order book u %s after %s; reconnecting for a new snapshot", self.venue, symbol,
                           event.first_update_id, previous)
            self._u.pop(symbol, None)
            self._resyncing.add(symbol)
            self.recycle("sequence_gap")
            return False
        u = event.last_update_id if type(event) is OrderBookSnapshot else event.final_update_id
        last = self._last_id.get(symbol)
        if type(event) is OrderBookSnapshot and last is not None and u + self._u_offset.get(symbol, 0) < last:
            self.counts[symbol]["sequence_resets"] += 1  # e.g. u == 1 after a Bybit service restart
            self._u_offset[symbol] = last - u + 1
        self._u[symbol] = u
        return True

    def _after_raw(self, message: object) -> None:
        """Bybit: the book ccxt just updated gets the message's ``u`` (+ offset) as its nonce."""
        if self.venue != "bybit" or not isinstance(message, dict) or not str(message.get("topic", "")).startswith("orderbook"):
            return
        symbol = str(message["topic"]).rpartition(".")[2].upper()
        book = self._exchange.orderbooks.get(self._markets.get(symbol)) if self._exchange is not None else None
        if book is not None and symbol in self._u:
            book["nonce"] = self._u[symbol] + self._u_offset.get(symbol, 0)

    def _on_connect(self) -> None:
        self.status.update(state="live", connected_at=now_ms())
        self._gap_cause = self._gap_cause or "connect"
        logger.info("%s: connected", self.venue)


def _require_protobuf() -> None:
    """ccxt.pro's MEXC spot streams are protobuf: fail clearly where the decoder is missing."""
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        raise VenuePermanentError("mexc", "ccxt.pro decodes MEXC spot streams with protobuf: pip install protobuf") from None

