"""A Bybit v5 public spot stand-in on loopback (aiohttp) serving the real recorded messages.

Not a test module. Source: ``shared/data/ws_samples/cryptofeed_BYBIT.jsonl.zst`` (cryptofeed's
recording of ``wss://stream.bybit.com/v5/public/spot``, connection ``BYBIT.ws.3``: ``orderbook.200``
snapshot + deltas and ``publicTrade`` for BTCUSDT and ETHUSDT, ~42 s) and its REST ``http`` records
(``GET /v5/market/instruments-info`` for spot and linear).

Like Bybit (v5 docs, "WebSocket Stream": Connect, "How to Send the Heartbeat Packet", public
orderbook / trade): ``{"op": "subscribe", "args": [...], "req_id": ...}`` is answered
``{"success": true, "ret_msg": "subscribe", "conn_id", "req_id", "op": "subscribe"}`` (an unknown
topic ``success: false``); ``{"op": "ping"}`` gets the spot pong ``{"success": true, "ret_msg": "pong",
..., "op": "ping"}``. The venue's clock runs whether anyone listens: recorded messages are produced in
recorded order at ``speed`` times their recorded pace and sent verbatim to the connections subscribed
to their topic; a connection that subscribes to a book after its recorded snapshot gets a snapshot of
the current book (top 200, the current ``u``), as Bybit sends one on every subscribe.

REST: ``instruments-info`` (recorded bodies), ``orderbook`` (the current book), ``kline`` (interval
"1" only: the recorded ``kline.1`` states, newest first, as Bybit orders them), each with Bybit's
``{"retCode": 0, "retMsg": "OK", "result": ...}`` envelope.
"""
from __future__ import annotations

import asyncio
import functools
import io
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import zstandard
from aiohttp import web

from ml.market.recording import default_data_dir

SPOT_CONN = "BYBIT.ws.3"
DEPTH = 200


@dataclass(frozen=True)
class Recording:
    """Spot frames ``(receive time s, raw text, decoded)`` in recorded order, and the REST bodies by category."""

    frames: list[tuple[float, str, dict]]
    instruments: dict[str, str]


@functools.cache
def load_recording(path: Path | None = None) -> Recording:
    path = path or default_data_dir() / "ws_samples" / "cryptofeed_BYBIT.jsonl.zst"
    frames, instruments = [], {}
    with path.open("rb") as fh:
        for line in io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(fh), encoding="utf-8"):
            record = orjson.loads(line)
            if record["t"] == "http" and "instruments-info" in record["url"]:
                instruments[record["url"].split("category=")[1].split("&")[0]] = record["data"]
            elif record["t"] == "recv" and record["conn"] == SPOT_CONN:
                msg = orjson.loads(record["data"])
                if "topic" in msg:
                    frames.append((record["ts"], record["data"], msg))
    return Recording(frames, instruments)


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    request: web.Request
    conn_id: str
    topics: set[str] = field(default_factory=set)


class BybitVenue:
    """The stand-in (module docstring). ``await start()`` / ``await stop()`` on one event loop."""

    def __init__(self, speed: float = 4.0, recording: Recording | None = None) -> None:
        self.recording = recording or load_recording()
        self.speed = speed
        self.books: dict[str, dict[str, dict[str, str]]] = {}  # symbol -> "b"/"a" -> price text -> size text
        self.book_u: dict[str, tuple[int, int, int]] = {}  # symbol -> (u, seq, ts)
        self.produced: list[dict] = []  # every recorded message produced so far
        self.counts: Counter[str] = Counter()
        self.http_errors: list[tuple[str, int]] = []  # (path part, status) answered once each, in order
        self._conns: list[_Conn] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._producer: asyncio.Task | None = None
        self.paused = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v5/public/spot", self._ws)
        app.router.add_get("/v5/market/instruments-info", self._instruments)
        app.router.add_get("/v5/market/orderbook", self._orderbook)
        app.router.add_get("/v5/market/kline", self._kline)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._producer = asyncio.create_task(self._produce())

    async def stop(self) -> None:
        if self._producer is not None:
            self._producer.cancel()
        for conn in list(self._conns):
            await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- faults -------------------------------------------------------------------------------

    def drop_connection(self) -> int:
        """Abort every websocket's TCP connection (no close frame). Returns how many."""
        n = 0
        for conn in list(self._conns):
            transport = conn.request.transport
            if transport is not None:
                transport.abort()
                n += 1
        self.counts["connections_dropped"] += n
        return n

    async def inject_frame(self, text: str) -> int:
        """Send ``text`` as one text frame to every connection. Returns how many."""
        for conn in list(self._conns):
            await conn.ws.send_str(text)
        self.counts["frames_injected"] += len(self._conns)
        return len(self._conns)

    # -- the venue's clock --------------------------------------------------------------------

    async def _produce(self) -> None:
        frames = self.recording.frames
        start_wall, start_rec = time.monotonic(), frames[0][0]
        for ts, text, msg in frames:
            delay = start_wall + (ts - start_rec) / self.speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._apply(msg)
            self.produced.append(msg)
            for conn in list(self._conns):
                if msg["topic"] in conn.topics and not conn.ws.closed:
                    try:
                        await conn.ws.send_str(text)
                    except ConnectionError:
                        pass
        self.counts["finished"] += 1

    def _apply(self, msg: dict) -> None:
        if not msg["topic"].startswith("orderbook."):
            return
        data, symbol = msg["data"], msg["data"]["s"]
        if msg["type"] == "snapshot":
            self.books[symbol] = {"b": {}, "a": {}}
        book = self.books.setdefault(symbol, {"b": {}, "a": {}})
        for side in ("b", "a"):
            for price, size in data[side]:
                if float(size) == 0:
                    book[side].pop(price, None)
                else:
                    book[side][price] = size
        self.book_u[symbol] = (data["u"], data.get("seq", 0), msg["ts"])

    def book_levels(self, symbol: str, depth: int = DEPTH) -> tuple[list[list[str]], list[list[str]]]:
        """The current book's best ``depth`` levels a side as Bybit's ``[price, size]`` text pairs."""
        book = self.books.get(symbol, {"b": {}, "a": {}})
        bids = sorted(book["b"].items(), key=lambda kv: -float(kv[0]))[:depth]
        asks = sorted(book["a"].items(), key=lambda kv: float(kv[0]))[:depth]
        return [list(kv) for kv in bids], [list(kv) for kv in asks]

    # -- websocket ----------------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Conn(ws, request, f"stand-in-{next(self._ids)}")
        self._conns.append(conn)
        self.counts["connections"] += 1
        try:
            async for frame in ws:
                if frame.type != web.WSMsgType.TEXT:
                    continue
                await self._on_op(conn, orjson.loads(frame.data))
        finally:
            self._conns.remove(conn)
        return ws

    async def _on_op(self, conn: _Conn, op: dict) -> None:
        req_id = op.get("req_id", "")
        if op.get("op") == "ping":
            self.counts["pings"] += 1
            await conn.ws.send_bytes(orjson.dumps({"success": True, "ret_msg": "pong", "conn_id": conn.conn_id,
                                                   "req_id": req_id, "op": "ping"}))
            return
        if op.get("op") != "subscribe":
            return
        topics = [str(t) for t in op.get("args", [])]
        known = [t for t in topics if t.startswith((f"orderbook.{DEPTH}.", "publicTrade."))]
        ok = len(known) == len(topics)
        self.counts["subscribes"] += 1
        reply = {"success": ok, "ret_msg": "subscribe" if ok else f"error:topic {topics} not supported",
                 "conn_id": conn.conn_id, "req_id": req_id, "op": "subscribe"}
        await conn.ws.send_str(orjson.dumps(reply).decode())
        for topic in known:
            conn.topics.add(topic)
            symbol = topic.rpartition(".")[2]
            if topic.startswith("orderbook.") and symbol in self.book_u:
                u, seq, ts = self.book_u[symbol]
                bids, asks = self.book_levels(symbol)
                await conn.ws.send_str(orjson.dumps({"topic": topic, "ts": ts, "type": "snapshot", "data": {
                    "s": symbol, "b": bids, "a": asks, "u": u, "seq": seq}, "cts": ts}).decode())

    # -- REST ---------------------------------------------------------------------------------

    def _error(self, request: web.Request) -> web.Response | None:
        for k, (part, status) in enumerate(self.http_errors):
            if part in request.path:
                del self.http_errors[k]
                self.counts[f"http_{status}"] += 1
                return web.json_response({"retCode": 10016, "retMsg": "service error"}, status=status)
        return None

    @staticmethod
    def _ok(result: dict) -> web.Response:
        return web.json_response({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
                                  "time": time.time_ns() // 1_000_000})

    async def _instruments(self, request: web.Request) -> web.Response:
        self.counts["instruments"] += 1
        category = request.query.get("category", "spot")
        body = self.recording.instruments.get(category)
        if body is None:
            return self._ok({"category": category, "list": []})
        return web.Response(text=body, content_type="application/json")

    async def _orderbook(self, request: web.Request) -> web.Response:
        error = self._error(request)
        if error is not None:
            return error
        symbol, limit = request.query["symbol"], int(request.query.get("limit", 1))
        if symbol not in self.books:
            return web.json_response({"retCode": 10001, "retMsg": "Not supported symbols", "result": {}})
        bids, asks = self.book_levels(symbol, limit)
        u, seq, ts = self.book_u[symbol]
        return self._ok({"s": symbol, "b": bids, "a": asks, "ts": ts, "u": u, "seq": seq, "cts": ts})

    async def _kline(self, request: web.Request) -> web.Response:
        error = self._error(request)
        if error is not None:
            return error
        q = request.query
        symbol, interval = q["symbol"], q.get("interval")
        start, end = int(q.get("start", 0)), int(q.get("end", 2**62))
        rows: dict[int, list[str]] = {}
        for _ts, _text, msg in self.recording.frames:
            if msg["topic"] == f"kline.1.{symbol}" and interval == "1":
                for c in msg["data"]:
                    rows[c["start"]] = [str(c["start"]), c["open"], c["high"], c["low"], c["close"], c["volume"],
                                        c["turnover"]]
        picked = [rows[t] for t in sorted(rows, reverse=True) if start <= t <= end][: int(q.get("limit", 200))]
        return self._ok({"symbol": symbol, "category": "spot", "list": picked})


class ThreadedBybit:
    """A started :class:`BybitVenue` on its own event-loop thread, for the blocking venue clients."""

    def __init__(self, speed: float = 4.0) -> None:
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bybit-stand-in", daemon=True)
        self.thread.start()
        self.server = self.call(lambda: BybitVenue(speed=speed))
        self.call(self.server.start())

    def call(self, what, timeout: float = 20.0):
        """Run a coroutine, or a plain callable, on the server's loop; returns its result."""
        import inspect

        if inspect.iscoroutine(what):
            return asyncio.run_coroutine_threadsafe(what, self.loop).result(timeout)

        async def run():
            result = what()
            return await result if inspect.isawaitable(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    @property
    def endpoints(self):
        from apps.market.venues.live import VenueEndpoints

        return VenueEndpoints(rest_url=self.server.url, ws_url=self.server.ws_url)

    def stop(self) -> None:
        try:
            self.call(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()


def recorded_books(symbol: str) -> dict[int, tuple[list, list]]:
    """``u`` -> the book (bids, asks as ``(price, size)`` floats, best first) after every recorded
    ``orderbook.200.<symbol>`` message, rebuilt with ``ml.market.venues.bybit``."""
    from ml.market.events import OrderBookSnapshot
    from ml.market.orderbook import OrderBook
    from ml.market.venues import bybit

    book, out = OrderBook(), {}
    for _ts, text, msg in load_recording().frames:
        if msg["topic"] != f"orderbook.{DEPTH}.{symbol}":
            continue
        (event,) = bybit.parse_message(text)
        if type(event) is OrderBookSnapshot:
            book.apply_snapshot(event)
            out[event.last_update_id] = (book.levels("bid"), book.levels("ask"))
        else:
            book.apply_levels(event.bids, event.asks)
            out[event.final_update_id] = (book.levels("bid"), book.levels("ask"))
    return out


def recorded_trades(symbol: str) -> list:
    """Every recorded ``publicTrade.<symbol>`` trade, parsed with ``ml.market.venues.bybit``."""
    from ml.market.venues import bybit

    return [t for _ts, text, msg in load_recording().frames if msg["topic"] == f"publicTrade.{symbol}"
            for t in bybit.parse_message(text)]
