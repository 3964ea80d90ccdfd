"""One Binance combined-stream websocket (aiohttp), kept open: reconnects, rotation, dead-peer checks.

Protocol rules (Binance spot "WebSocket Streams", developers.binance.com/docs/binance-spot-api-docs/
web-socket-streams; USD-M "Websocket Market Streams" say the same):

- combined streams at ``/stream?streams=<a>/<b>/...``, each frame ``{"stream": name, "data": payload}``;
- "A single connection to stream.binance.com is only valid for 24 hours; expect to be disconnected
  at the 24 hour mark": we rotate before that, after ``max_age_s`` (default 23 h);
- "The WebSocket server will send a ping frame every 20 seconds. If the WebSocket server does not
  receive a pong frame back from the connection within a 1 minute period, the connection will be
  disconnected": aiohttp answers pings itself (``autoping``);
- a connection on which no frame arrives for ``idle_timeout_s`` is taken as dead (a half-open
  TCP connection never reports its end) and replaced; so is one the server closes (e.g. close
  code 1001 "server shutdown" before maintenance) or that drops.

Reconnects wait an exponential backoff with full jitter (:class:`~apps.market.venues.ccxt_rest.Backoff`),
reset once a connection has lived ``stable_after_s``; a rotation reconnects at once. A handshake
refused with a 4xx other than 429/418 is permanent (:class:`VenuePermanentError`): the stream
stops instead of hammering the venue.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from apps.market.venues.ccxt_rest import Backoff, VenuePermanentError

logger = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001  # RFC 6455: server shutting down / restarting


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Connection policy of a :class:`BinanceStream` (seconds everywhere)."""

    backoff: Backoff = Backoff()
    max_age_s: float = 23 * 3600.0  # rotate before Binance's 24 h limit
    idle_timeout_s: float = 10.0  # no frame for this long: the connection is dead
    stable_after_s: float = 30.0  # a connection this old resets the backoff
    connect_timeout_s: float = 10.0


class BinanceStream:
    """Keep one websocket to ``url`` open until :meth:`stop`; hand every text frame to ``on_frame``.

    Callbacks run on the stream's event loop and must not block:
    ``on_frame(text, ts_init_ms)``; ``on_connect()`` after each successful handshake;
    ``on_disconnect(cause, error)`` when a connection ends (cause: "disconnect", "server_shutdown",
    "idle", "rotation", "overflow" (asked by :meth:`reconnect`), "connect_failed").

    Observability: ``reconnects`` (connections after the first), ``waits`` (backoff delays slept,
    last 100), ``close_codes`` (last 100).
    """

    def __init__(self, url: str, *, config: StreamConfig, rng: random.Random,
                 on_frame: Callable[[str, int], None], on_connect: Callable[[], None],
                 on_disconnect: Callable[[str, str], None]) -> None:
        self.url, self.config, self.rng = url, config, rng
        self.on_frame, self.on_connect, self.on_disconnect = on_frame, on_connect, on_disconnect
        self.reconnects = 0
        self.waits: list[float] = []
        self.close_codes: list[int | None] = []
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reconnect_cause: str | None = None

    def reconnect(self, cause: str) -> None:
        """Drop the current connection and open a new one (called on the stream's loop)."""
        self._reconnect_cause = cause
        if self._ws is not None and not self._ws.closed:
            asyncio.get_running_loop().create_task(self._ws.close())

    async def run(self) -> None:
        """Connect, read, reconnect until cancelled. Raises VenuePermanentError on a refused handshake."""
        attempt = 0
        first = True
        async with aiohttp.ClientSession() as http:
            while True:
                if not first:
                    self.reconnects += 1
                first = False
                try:
                    async with asyncio.timeout(self.config.connect_timeout_s):
                        ws = await http.ws_connect(self.url, autoping=True, max_msg_size=0,
                                                   timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0))
                except aiohttp.WSServerHandshakeError as exc:
                    if 400 <= exc.status < 500 and exc.status not in (418, 429):
                        raise VenuePermanentError("binance", f"websocket {self.url} refused: HTTP {exc.status}",
                                                  exc.status) from exc
                    self.on_disconnect("connect_failed", f"HTTP {exc.status}")
                    attempt = await self._wait(attempt)
                    continue
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    self.on_disconnect("connect_failed", f"{type(exc).__name__}: {exc}")
                    attempt = await self._wait(attempt)
                    continue
                connected = time.monotonic()
                self._ws, self._reconnect_cause = ws, None
                self.on_connect()
                try:
                    cause, error = await self._read(ws, connected)
                finally:
                    self._ws = None
                    if not ws.closed:
                        await ws.close()
                self.close_codes = [*self.close_codes[-99:], ws.close_code]
                self.on_disconnect(cause, error)
                if time.monotonic() - connected >= self.config.stable_after_s:
                    attempt = 0
                if cause != "rotation":
                    attempt = await self._wait(attempt)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, connected: float) -> tuple[str, str]:
        """Read frames until the connection ends; returns ``(cause, error text)``."""
        deadline = connected + self.config.max_age_s
        while True:
            timeout = min(self.config.idle_timeout_s, deadline - time.monotonic())
            if timeout <= 0:
                logger.info("%s: connection is %.0f s old; rotating", self.url, self.config.max_age_s)
                return "rotation", ""
            try:
                msg = await ws.receive(timeout=timeout)
            except TimeoutError:
                if time.monotonic() >= deadline:
                    continue  # the rotation branch above
                logger.warning("%s: no frame for %.1f s; reconnecting", self.url, self.config.idle_timeout_s)
                return "idle", f"no frame for {self.config.idle_timeout_s} s"
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.on_frame(msg.data, time.time_ns() // 1_000_000)
                continue
            if msg.type == aiohttp.WSMsgType.BINARY:
                self.on_frame(msg.data.decode("utf-8", "replace"), time.time_ns() // 1_000_000)
                continue
            if self._reconnect_cause is not None:
                return self._reconnect_cause, ""
            code = ws.close_code
            if code == CLOSE_GOING_AWAY:
                reason = msg.extra if isinstance(msg.extra, str) else ""
                logger.warning("%s: server closed the connection (1001 %s); reconnecting", self.url, reason)
                return "server_shutdown", f"closed by the server: 1001 {reason}".strip()
            error = ws.exception()
            logger.warning("%s: connection lost (%s, close code %s, %r); reconnecting", self.url, msg.type.name,
                           code, error)
            return "disconnect", f"connection lost: {msg.type.name} {code} {error or ''}".strip()

    async def _wait(self, attempt: int) -> int:
        delay = self.config.backoff.delay(attempt, self.rng)
        self.waits = [*self.waits[-99:], delay]
        await asyncio.sleep(delay)
        return attempt + 1
