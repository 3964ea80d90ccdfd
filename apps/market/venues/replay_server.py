"""A replay venue on loopback that speaks Binance spot's protocol (REST + websocket streams).

It serves a recorded session (``shared/data/orderbook/binance_spot``; with ``market="usdm"`` the
USD-M perpetual recordings, REST under ``/fapi/v1`` and diff-depth served under any requested
``@depth`` speed) so ccxt.pro (URLs
overridden, see :meth:`ReplayServer.ccxt_urls`) or our own client connects exactly as to
``api.binance.com`` / ``stream.binance.com``:

- REST: ``GET /api/v3/ping``, ``/time`` (the replay clock), ``/exchangeInfo`` (the recorded
  response), ``/depth?symbol=&limit=`` (the venue's current truth book, like a snapshot taken
  now), ``/klines?symbol=&interval=&limit=&startTime=&endTime=`` (built from the recorded
  trades the clock has passed). Errors are Binance JSON ``{"code": -1121, "msg": ...}``, 400.
- Websocket: ``/stream?streams=a/b`` (combined frames ``{"stream", "data"}`` as recorded),
  ``/ws/<stream>`` and ``/ws`` (raw payloads), and the live ``SUBSCRIBE`` / ``UNSUBSCRIBE`` /
  ``LIST_SUBSCRIPTIONS`` methods (reply ``{"result": null, "id": N}``). Ping frames are answered
  (aiohttp autoping) and the server pings every ``heartbeat`` s, as Binance does every 20 s.

Time. One shared clock: recorded frames go out when the clock reaches their exchange time
(``E`` / ``T``); the clock runs at ``speed`` times real time from :meth:`start`, so a client
gets the stream from "now", as on the exchange. ``speed=None`` runs as fast as the clients read
(a full client queue makes the replay wait) and starts at the first subscription. At the end of
the session the streams go quiet; REST keeps serving the final state.

Faults (all counted in ``faults``): :meth:`drop_connection` (TCP abort, no close frame),
:meth:`drop_next` / :meth:`duplicate_next` / :meth:`reorder_next` diff messages of a symbol,
:meth:`delay` (hold every outgoing frame), :meth:`stale_snapshot` (depth serves the session's
first snapshot), :meth:`shutdown_message` (close frame 1001 "going away" with reason
"server shutdown": what a server restart / Binance maintenance looks like to a client),
:meth:`http_error` (REST answers 429 + Retry-After, 418, 5xx, or is held past a client timeout),
:meth:`inject_frame` (arbitrary text frames: malformed JSON, unknown symbols). Faults affect
delivery only; the truth book still applies every diff, as the exchange would.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from aiohttp import WSMsgType, web

from apps.market.venues.replay_data import (
    HISTORY_INTERVALS,
    Frame,
    SymbolState,
    load_exchange_info,
    load_history,
    load_session,
)
from apps.market.venues.replay_orders import OrderApi
from apps.market.venues.replay_rest import RestApi
from ml.market.events import Trade
from ml.market.orderbook import OrderBook
from ml.market.recording import default_data_dir

logger = logging.getLogger(__name__)

CLOSE_SERVER_SHUTDOWN = 1001  # RFC 6455 "going away": server shutting down / restarting
MAX_CLIENT_QUEUE = 200_000  # frames buffered per client (a delay fault builds a backlog)


@dataclass(eq=False)
class _Client:
    ws: web.WebSocketResponse
    request: web.Request
    combined: bool
    streams: set[str]
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(MAX_CLIENT_QUEUE))


@dataclass(slots=True)
class _DiffFaults:
    """Pending diff faults of one symbol."""

    drop: int = 0
    duplicate: int = 0
    reorder: int = 0
    held: Frame | None = None  # the diff being reordered, sent after the next one


class ReplayServer:
    """Binance spot replay venue (module docstring).

    Args:
        recordings: ``{symbol: [gz paths of one run, in order]}`` (``default_spot_session()``).
        speed: replay speed (x real time); None = as fast as clients read.
        host, port: where to listen; port 0 picks a free port (see :attr:`url`).
        data_dir: shared data directory holding the recorded exchangeInfo (default: the repo's).
        heartbeat: seconds between server ping frames.

    After :meth:`start`: ``states`` (per-symbol truth book and trades), ``exchange_info`` (the
    recorded body), ``stale`` (stale-snapshot fault on), ``faults`` (injected faults by kind:
    ``diffs_dropped``, ``diffs_duplicated``, ``diffs_reordered``, ``delays``,
    ``stale_snapshots`` served, ``connections_dropped``, ``shutdown_messages``) and ``stats``
    (``connections``, ``frames_sent``, ``rest_requests``, ``rest_errors``, ``bad_ws_requests``,
    ``slow_client_disconnects``).

    Raises ValueError for a non-positive speed; :meth:`start` raises OSError if a recording
    cannot be read or the port is taken.
    """

    def __init__(self, recordings: dict[str, list[Path]], speed: float | None = 1.0,
                 host: str = "127.0.0.1", port: int = 0, *, data_dir: Path | None = None,
                 heartbeat: float = 20.0, market: str = "spot") -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be > 0 or None, got {speed!r}")
        if market not in ("spot", "usdm"):
            raise ValueError(f"market must be 'spot' or 'usdm', got {market!r}")
        self.market = market
        self._depth_streams: dict[str, str] = {}  # symbol -> the recorded diff-depth stream name
        self.recordings = recordings
        self.speed = speed
        self.host, self.port = host, port
        self.data_dir = data_dir
        self.heartbeat = heartbeat
        self.faults: Counter[str] = Counter()
        self.stats: Counter[str] = Counter()
        self.finished = asyncio.Event()
        self._frames: list[Frame] = []
        self.states: dict[str, SymbolState] = {}
        self.exchange_info = b""
        self._clients: set[_Client] = set()
        self._diff_faults: dict[str, _DiffFaults] = {}
        self._http_faults: list[dict] = []
        self.fault_log: list[tuple[str, str, int, int]] = []  # (dropped | reordered, symbol, U, u) of each diff
        self.stale = False
        self._hold_until = 0.0
        self._t0 = self._t_last = 0
        self._wall0: float | None = None
        self._processed_ts = 0
        self._first_sub = asyncio.Event()
        self._running = asyncio.Event()
        self._running.set()
        self._paused_at: float | None = None
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the session (in a thread), listen, start the replay clock."""
        self._frames, self.states = await asyncio.to_thread(load_session, self.recordings)
        self.exchange_info = await asyncio.to_thread(load_exchange_info, self.data_dir, self.market)
        if self.market == "spot":  # the history files are spot candles
            await asyncio.to_thread(self._load_histories)  # cached reads, off the loop
        self._depth_streams = {f.symbol.lower(): f.stream for f in self._frames if f.delta is not None}
        if not self._frames:
            raise ValueError("the recordings hold no stream frame")
        self._t0, self._t_last = self._frames[0].ts, self._frames[-1].ts
        self._processed_ts = self._t0
        self._diff_faults = {sym: _DiffFaults() for sym in self.states}
        app = web.Application()
        RestApi(self).add_routes(app)
        self.order_api = OrderApi(self)  # signed order endpoints (replay_orders), for live clients
        self.order_api.add_routes(app)
        app.router.add_get("/ws", self._ws_handler)
        app.router.add_get("/ws/{name}", self._ws_handler)
        app.router.add_get("/stream", self._ws_handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self._task = asyncio.create_task(self._replay(), name="replay-clock")
        logger.info("replay venue on %s (speed %s, %d frames)", self.url, self.speed,
                    len(self._frames))

    async def stop(self) -> None:
        """Stop the clock, close every client (1001), stop listening. Idempotent."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for client in list(self._clients):
            await client.ws.close(code=CLOSE_SERVER_SHUTDOWN, message=b"server stopping")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _load_histories(self) -> None:
        """Read the 1m/1h/1d history files the klines endpoint serves (``replay_data.load_history``)."""
        for symbol in self.states:
            for interval in HISTORY_INTERVALS:
                load_history(self.data_dir or default_data_dir(), symbol, interval)

    @property
    def url(self) -> str:
        """HTTP base, e.g. ``http://127.0.0.1:43123`` (REST under ``/api/v3``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """Websocket base, e.g. ``ws://127.0.0.1:43123`` (``/ws``, ``/stream``)."""
        return f"ws://{self.host}:{self.port}"

    def ccxt_urls(self, api: dict) -> dict:
        """A copy of a ccxt ``exchange.urls["api"]`` with every URL pointed at this server.

        Keeps each URL's path (``/api/v3``, ``/sapi/v1``...), so the endpoints we serve work and
        the others answer 404 here instead of reaching the internet; websocket URLs become
        ``ws://host:port/ws`` (ccxt.pro appends ``/<stream index>``).
        """
        out: dict = {}
        for key, value in api.items():
            if isinstance(value, dict):
                out[key] = self.ccxt_urls(value)
            elif isinstance(value, str) and value.startswith(("ws://", "wss://")):
                out[key] = f"{self.ws_url}/ws"
            elif isinstance(value, str) and "://" in value:
                out[key] = self.url + urlsplit(value).path
            else:
                out[key] = value
        return out

    # -- state -----------------------------------------------------------------------------

    def clock_ms(self) -> int:
        """The replay clock: exchange time (ms since epoch) the session has reached."""
        if self.speed is None or self._wall0 is None:
            return self._processed_ts
        now = self._paused_at if self._paused_at is not None else asyncio.get_running_loop().time()
        elapsed = now - self._wall0
        return min(self._t_last, self._t0 + int(elapsed * 1000 * self.speed))

    def truth_book(self, symbol: str) -> OrderBook:
        """The venue's current book of ``symbol`` (live object). KeyError if unknown."""
        return self.states[symbol.upper()].truth

    def truth_update_id(self, symbol: str) -> int | None:
        """``lastUpdateId`` of the truth book (last diff ``u`` applied)."""
        return self.states[symbol.upper()].truth_id

    def recorded_trades(self, symbol: str) -> list[Trade]:
        """Every recorded trade of ``symbol`` in the session, sorted by ``T`` (read-only)."""
        return self.states[symbol.upper()].trades

    @property
    def symbols(self) -> list[str]:
        return list(self.states)

    @property
    def clients(self) -> int:
        """Open websocket connections."""
        return len(self._clients)

    def pause(self) -> None:
        """Freeze the replay clock (no frame is published; REST serves a fixed state)."""
        if self._paused_at is None:
            self._paused_at = asyncio.get_running_loop().time()
            self._running.clear()

    def resume(self) -> None:
        """Restart the clock where it was frozen (the paused time is skipped, not replayed)."""
        if self._paused_at is not None:
            if self._wall0 is not None:
                self._wall0 += asyncio.get_running_loop().time() - self._paused_at
            self._paused_at = None
            self._running.set()

    # -- faults ----------------------------------------------------------------------------

    def drop_connection(self) -> int:
        """Abort every websocket's TCP connection (no close frame). Returns how many."""
        n = 0
        for client in list(self._clients):
            transport = client.request.transport
            if transport is not None:
                transport.abort()
                n += 1
        self.faults["connections_dropped"] += n
        return n

    async def shutdown_message(self, reason: str = "server shutdown") -> int:
        """Close every websocket with close code 1001 and ``reason``. Returns how many."""
        clients = list(self._clients)
        await asyncio.gather(*(c.ws.close(code=CLOSE_SERVER_SHUTDOWN, message=reason.encode())
                               for c in clients), return_exceptions=True)
        self.faults["shutdown_messages"] += len(clients)
        return len(clients)

    def drop_next(self, symbol: str, n: int = 1) -> None:
        """Do not deliver the next ``n`` diff messages of ``symbol`` (to any client)."""
        self._symbol_faults(symbol).drop += n

    def duplicate_next(self, symbol: str, n: int = 1) -> None:
        """Deliver each of the next ``n`` diff messages of ``symbol`` twice in a row."""
        self._symbol_faults(symbol).duplicate += n

    def reorder_next(self, symbol: str, n: int = 1) -> None:
        """Swap the next diff of ``symbol`` with the one after it (``n`` times)."""
        self._symbol_faults(symbol).reorder += n

    def delay(self, seconds: float) -> None:
        """Hold every outgoing websocket frame for ``seconds`` from now (then a burst)."""
        loop_time = asyncio.get_running_loop().time()
        self._hold_until = max(self._hold_until, loop_time + seconds)
        self.faults["delays"] += 1

    def http_error(self, status: int = 429, n: int = 1, *, retry_after: int | None = None,
                   delay: float = 0.0, path: str = "/api/") -> None:
        """Answer the next ``n`` REST requests under ``path`` with HTTP ``status`` (Binance's JSON
        error body; 429/418 with ``Retry-After: retry_after`` seconds when given) after holding
        them ``delay`` s. ``status=0`` holds the request ``delay`` s, then serves it normally (a
        client with a shorter timeout sees a timeout). Counted in ``faults["http_errors"]``."""
        self._http_faults.extend({"status": status, "retry_after": retry_after, "delay": delay,
                                  "path": path} for _ in range(n))

    def take_http_fault(self, path: str) -> dict | None:
        """The pending HTTP fault for a request to ``path`` (removed; None if there is none)."""
        for k, fault in enumerate(self._http_faults):
            if path.startswith(fault["path"]):
                del self._http_faults[k]
                self.faults["http_errors" if fault["status"] else "http_delays"] += 1
                return fault
        return None

    def inject_frame(self, text: str) -> int:
        """Send ``text`` as one websocket text frame to every client, subscribed or not (malformed /
        unknown-symbol input for a client's parser). Returns how many clients got it."""
        n = 0
        for client in list(self._clients):
            if not client.queue.full():
                client.queue.put_nowait(text)
                n += 1
        self.faults["frames_injected"] += n
        return n

    def stale_snapshot(self, on: bool = True) -> None:
        """While on, ``/depth`` serves the session's first (recorded) snapshot."""
        self.stale = on

    def pending_faults(self, symbol: str) -> int:
        """Diff faults of ``symbol`` not applied yet (queued drops, duplicates, reorders, a held diff)."""
        f = self._symbol_faults(symbol)
        return f.drop + f.duplicate + f.reorder + (f.held is not None)

    def _symbol_faults(self, symbol: str) -> _DiffFaults:
        try:
            return self._diff_faults[symbol.upper()]
        except KeyError:
            raise KeyError(f"no recording for symbol {symbol!r}") from None

    # -- replay clock ----------------------------------------------------------------------

    async def _replay(self) -> None:
        """Publish each frame when the clock reaches its exchange time."""
        loop = asyncio.get_running_loop()
        if self.speed is None:
            await self._first_sub.wait()
        self._wall0 = loop.time()
        frames, i = self._frames, 0
        while i < len(frames):
            if not self._running.is_set():
                await self._running.wait()
                continue
            if self.speed is not None:
                due = self._wall0 + (frames[i].ts - self._t0) / 1000 / self.speed
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                    continue  # a pause may have started meanwhile
                clock = max(self.clock_ms(), frames[i].ts)  # int() may lag the float time
            else:
                clock = frames[i].ts
            while i < len(frames) and frames[i].ts <= clock:
                await self._publish(frames[i])
                i += 1
            if self.speed is None:
                await asyncio.sleep(0)
        for sym, pending in self._diff_faults.items():
            if pending.held is not None:
                logger.info("%s: session ended with a reordered diff held; sending it", sym)
                await self._deliver(pending.held)
                pending.held = None
        self.finished.set()
        logger.info("replay session finished (%d frames)", len(frames))

    async def _publish(self, frame: Frame) -> None:
        self._processed_ts = frame.ts
        if frame.delta is None:
            await self._deliver(frame)
            return
        self.states[frame.symbol].apply(frame.delta)
        pending = self._diff_faults[frame.symbol]
        if pending.drop:
            pending.drop -= 1
            self.faults["diffs_dropped"] += 1
            self.fault_log.append(("dropped", frame.symbol, frame.delta.first_update_id, frame.delta.final_update_id))
            return
        out = [frame]
        if pending.duplicate:
            pending.duplicate -= 1
            self.faults["diffs_duplicated"] += 1
            out.append(frame)
        if pending.held is not None:
            out.append(pending.held)
            pending.held = None
        elif pending.reorder:
            pending.reorder -= 1
            pending.held = frame
            self.faults["diffs_reordered"] += 1
            self.fault_log.append(("reordered", frame.symbol, frame.delta.first_update_id, frame.delta.final_update_id))
            return
        for item in out:
            await self._deliver(item)

    async def _deliver(self, frame: Frame) -> None:
        for client in list(self._clients):
            if frame.stream not in client.streams:
                continue
            text = frame.text if client.combined else frame.raw
            if not client.queue.full():
                client.queue.put_nowait(text)
            elif self.speed is None:
                await client.queue.put(text)  # backpressure: the replay waits for the reader
            else:
                logger.warning("slow client: %d frames queued; disconnecting", MAX_CLIENT_QUEUE)
                self.stats["slow_client_disconnects"] += 1
                self._clients.discard(client)
                if client.request.transport is not None:
                    client.request.transport.abort()

    # -- websocket ---------------------------------------------------------------------------

    async def _ws_handler(self, request: web.Request) -> web.WebSocketResponse:
        combined = request.path.startswith("/stream")
        if combined:
            names = request.query.get("streams", "").split("/")
        else:
            names = [request.match_info.get("name", "")]
        streams = {self._recorded_name(name) for name in names if "@" in name}
        ws = web.WebSocketResponse(heartbeat=self.heartbeat, autoping=True)
        await ws.prepare(request)
        client = _Client(ws=ws, request=request, combined=combined, streams=streams)
        self._clients.add(client)
        self.stats["connections"] += 1
        if streams:
            self._first_sub.set()
        writer = asyncio.create_task(self._write(client))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    reply = orjson.dumps(self._ws_request(client, msg.data)).decode()
                    if client.queue.full():
                        break  # a reader this far behind is disconnected anyway
                    client.queue.put_nowait(reply)
        finally:
            self._clients.discard(client)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        return ws

    async def _write(self, client: _Client) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                text = await client.queue.get()
                hold = self._hold_until - loop.time()
                if hold > 0:
                    await asyncio.sleep(hold)
                await client.ws.send_str(text)
                self.stats["frames_sent"] += 1
        except (ConnectionError, RuntimeError) as exc:  # peer gone / ws closing
            logger.debug("client writer stopped: %s", exc)

    def _recorded_name(self, name: str) -> str:
        """Binance stream name; a diff-depth name at another update speed (``@depth``, ``@depth@100ms``)
        maps to the recorded one (the USD-M files hold ``@depth@0ms``), served at the recorded pace."""
        name = _stream_name(name)
        symbol, _, kind = name.partition("@")
        if (kind == "depth" or kind.startswith("depth@")) and symbol in self._depth_streams:
            return self._depth_streams[symbol]
        return name

    def _ws_request(self, client: _Client, data: str) -> dict:
        """Answer one live method message (Binance "Live Subscribing/Unsubscribing")."""
        try:
            req = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.stats["bad_ws_requests"] += 1
            return {"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}
        if not isinstance(req, dict):
            self.stats["bad_ws_requests"] += 1
            return {"error": {"code": 2, "msg": "Invalid request"}, "id": None}
        method, params, req_id = req.get("method"), req.get("params") or [], req.get("id")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE") and isinstance(params, list):
            names = {self._recorded_name(str(p)) for p in params}
            if method == "SUBSCRIBE":
                client.streams |= names
                self._first_sub.set()
            else:
                client.streams -= names
            return {"result": None, "id": req_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(client.streams), "id": req_id}
        if method == "SET_PROPERTY" and params[:1] == ["combined"] and len(params) == 2:
            client.combined = bool(params[1])
            return {"result": None, "id": req_id}
        if method == "GET_PROPERTY" and params == ["combined"]:
            return {"result": client.combined, "id": req_id}
        self.stats["bad_ws_requests"] += 1
        return {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"},
                "id": req_id}

def _stream_name(name: str) -> str:
    """Binance stream names: lower-case symbol, stream type as is (``ethusdt@bookTicker``)."""
    symbol, at, kind = name.partition("@")
    return symbol.lower() + at + kind


async def _serve(args: argparse.Namespace) -> None:
    from ml.market.recording import default_spot_session, default_usdm_session

    session = (default_usdm_session if args.market == "usdm" else default_spot_session)(args.data_dir)
    wanted = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(session))
    if unknown or not wanted:
        raise SystemExit(f"--symbols: no recording for {unknown}; have {sorted(session)}")
    server = ReplayServer({s: session[s] for s in wanted}, speed=args.speed, host=args.host,
                          port=args.port, data_dir=args.data_dir, market=args.market)
    await server.start()
    streams = "/".join(f"{s.lower()}@{k}" for s in wanted for k in ("depth@100ms", "trade"))
    rest_base = "/fapi/v1" if args.market == "usdm" else "/api/v3"
    print(f"REST      {server.url}{rest_base}  (depth, klines, exchangeInfo, time, ping)")
    print(f"combined  {server.ws_url}/stream?streams={streams}")
    print(f"raw       {server.ws_url}/ws/{wanted[0].lower()}@depth@100ms")
    print(f"ccxt.pro  urls['api']['ws']['spot'] = '{server.ws_url}/ws'", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    finished = asyncio.create_task(server.finished.wait())
    try:
        await asyncio.wait([finished, asyncio.create_task(stop.wait())],
                           return_when=asyncio.FIRST_COMPLETED)
        if finished.done() and not stop.is_set():
            print("session finished; REST keeps serving the final state", flush=True)
            await stop.wait()
    finally:
        await server.stop()
        print(f"stopped; faults {dict(server.faults)}, stats {dict(server.stats)}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m apps.market.venues.replay_server --speed 10 --port 9443``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", default="1",
                        help="x real time; 'max' = as fast as clients read (default 1)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9443)
    parser.add_argument("--symbols", default="ETHUSDT,BTCUSDT")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--market", choices=("spot", "usdm"), default="spot",
                        help="usdm: the USD-M perpetual recordings under /fapi/v1 (GOGO_BINANCEUSDM_* endpoints)")
    args = parser.parse_args(argv)
    args.speed = None if args.speed == "max" else float(args.speed)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
