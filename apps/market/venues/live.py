"""A live Binance venue for :class:`~ml.market.session.MarketSession`: websocket events + REST snapshots.

Same interface as the replay venue (``ml.market.replay.ReplayVenue``), so the Engine runs on it
unchanged: ``events()`` (here in arrival order, with :class:`~ml.market.events.StreamGap` markers
after every (re)connect), ``snapshot(symbol)`` (a synchronous REST depth snapshot, the
synchronizer's ``snapshot_source``), ``counts`` and ``status``.

Threads. The websocket (:class:`~apps.market.venues.binance_ws.BinanceStream`) runs on its own
event loop thread and parses every frame into a queue; the consumer (the Engine thread) iterates
``events()`` and calls ``snapshot()``, so a resync blocks only the consumer while the socket keeps
reading. Frames are never dropped for a slow consumer until ``queue_size`` events wait; then the
connection is recycled (cause "overflow", like Binance disconnecting a slow client) and the hole
is marked with a gap as for any disconnect.

Local order book (Binance "How to manage a local order book correctly", spot and USD-M): open the
stream first, buffer, then fetch the snapshot: ``events()`` yields the REST snapshot of a symbol
right after its first diff; the synchronizer handles the rest (drop ``u <= lastUpdateId``, chain
``U``/``u`` or futures ``pu``, resync on a break).

No silent interpolation: when a connection is (re)established, the first message's exchange time
``t`` closes a :class:`StreamGap` per symbol from the last exchange time seen before the loss (for
the first connection, from the start of ``t``'s second: it began before we listened). The session
then builds no candle for those seconds; the caller backfills them through REST.

Endpoints come from settings (``GOGO_BINANCE_REST_URL`` / ``GOGO_BINANCE_WS_URL``, USD-M
``GOGO_BINANCEUSDM_*``), defaulting to the replay venue on ``127.0.0.1:9443``; a user going live
sets ``https://api.binance.com`` and ``wss://stream.binance.com:9443`` (USD-M:
``https://fapi.binance.com``, ``wss://fstream.binance.com``).
"""
from __future__ import annotations

import asyncio
import logging
import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from apps.market.venues.binance_ws import BinanceStream, StreamConfig
from apps.market.venues.ccxt_rest import VENUES, Backoff, BinanceRest
from apps.market.venues.threaded import LOG_CHARS, VENUE_KEY, ThreadedVenue, now_ms
from ml.market.binance import MarketEvent, parse_message
from ml.market.errors import MalformedMessage
from ml.market.events import OrderBookDelta, OrderBookSnapshot, Trade

logger = logging.getLogger(__name__)

__all__ = ["LOG_CHARS", "VENUE_KEY", "LiveVenue", "VenueEndpoints", "stream_config_from_settings"]
_STREAM_SYMBOL = re.compile(r'"stream"\s*:\s*"([a-z0-9]+)@')


@dataclass(frozen=True, slots=True)
class VenueEndpoints:
    """Where a venue is: ``rest_url`` (scheme + host; REST under ``/api/v3`` or ``/fapi/v1``) and
    ``ws_url`` (scheme + host[:port]; combined streams under ``/stream``)."""

    rest_url: str
    ws_url: str

    @classmethod
    def from_settings(cls, venue: str) -> VenueEndpoints:
        """The configured endpoints of ``venue`` ("binance" | "binanceusdm"; module docstring)."""
        from django.conf import settings

        prefix = "GOGO_BINANCEUSDM" if venue == "binanceusdm" else "GOGO_BINANCE"
        return cls(rest_url=getattr(settings, f"{prefix}_REST_URL"), ws_url=getattr(settings, f"{prefix}_WS_URL"))


class LiveVenue(ThreadedVenue):
    """Binance spot (``venue="binance"``) or USD-M (``"binanceusdm"``) market data for a session.

    Args:
        venue: "binance" or "binanceusdm" (ValueError for another: no client for it yet).
        symbols: instruments, e.g. ``["ETHUSDT", "BTCUSDT"]``.
        endpoints: default :meth:`VenueEndpoints.from_settings`.
        streams: "depth" (``<sym>@depth@100ms``) and/or "trade" (``<sym>@trade``).
        config: reconnect / rotation / dead-connection policy (default from settings).
        snapshot_limit: levels a side of each REST snapshot (1000: weight 20 on spot).
        queue_size: events waiting for the consumer before the connection is recycled.
        rest: a :class:`BinanceRest` to use (default one on ``endpoints.rest_url``).
        rng: jitter source (seed it in tests).
        close_delay_ms: what a session on this venue should wait past a second's end before closing
            its candles (``MarketSession(close_delay_ms=...)``): events come in arrival order, and a
            trade can arrive after a diff of the next second (up to ~150 ms in the 2024-08 recordings).

    Attributes:
        counts: per symbol a Counter: ``messages``, ``trades``, ``deltas``, ``snapshots``,
            ``duplicates`` (a trade id or diff ``u`` already seen: dropped), ``out_of_order``
            (a diff older than one already passed on: dropped, the synchronizer would drop it
            too), ``malformed``, ``rejected`` (parsed but impossible: non-positive or non-finite
            price / size), ``stream_gaps``; ``counts["_venue"]``: ``malformed`` without a readable
            symbol, ``unknown_symbol``, ``ignored`` (subscription replies, other streams),
            ``overflow``.
        status: ``state`` (connecting / live / reconnecting / stopped / failed), ``connected_at``
            and ``last_message_ms`` (ms, our clock), ``reconnects``, ``errors`` (count), ``error``
            (the last one), ``messages``.
    """

    def __init__(self, *, venue: str, symbols: Sequence[str], endpoints: VenueEndpoints | None = None,
                 streams: Sequence[str] = ("depth", "trade"), config: StreamConfig | None = None,
                 snapshot_limit: int = 1000, queue_size: int = 200_000, rest: BinanceRest | None = None,
                 rng: random.Random | None = None, close_delay_ms: int = 500, start: bool = True) -> None:
        if venue not in VENUES:
            raise ValueError(f"no live client for venue {venue!r}; have {VENUES}")
        unknown = set(streams) - {"depth", "trade"}
        if unknown or not streams or not symbols:
            raise ValueError(f"symbols and streams (depth, trade) are required; unknown streams {sorted(unknown)}")
        self._venue_init(venue=venue, symbols=symbols, queue_size=queue_size, close_delay_ms=close_delay_ms, rng=rng)
        self._symbol_set = frozenset(self.symbols)
        self.endpoints = endpoints or VenueEndpoints.from_settings(venue)
        self.config = config or stream_config_from_settings()
        self.snapshot_limit = snapshot_limit
        self.rest = rest or BinanceRest(venue=venue, rest_url=self.endpoints.rest_url, rng=self.rng)
        self.sync_rule = "futures" if venue == "binanceusdm" else "spot"
        names = {"depth": "depth@100ms", "trade": "trade"}
        self.stream_names = [f"{s.lower()}@{names[k]}" for s in self.symbols for k in streams]
        self.url = f"{self.endpoints.ws_url.rstrip('/')}/stream?streams={'/'.join(self.stream_names)}"
        self._last_trade_id: dict[str, int] = {}
        self._last_u: dict[str, int] = {}
        self._snapshot_sent: set[str] = set()
        self.stream = BinanceStream(self.url, config=self.config, rng=self.rng, on_frame=self._on_frame,
                                    on_connect=self._on_connect, on_disconnect=self._on_disconnect)
        if start:
            self.start()

    # -- consumer side (events, pending, close: ThreadedVenue) -------------------------------

    def _after(self, item: object) -> OrderBookSnapshot | None:
        """A symbol's first diff is followed by its REST snapshot (the documented sync order);
        raises what :meth:`snapshot` raises."""
        if type(item) is OrderBookDelta and item.symbol not in self._snapshot_sent:
            self._snapshot_sent.add(item.symbol)
            return self.snapshot(item.symbol)
        return None

    def snapshot(self, symbol: str) -> OrderBookSnapshot:
        """A REST depth snapshot of ``symbol`` now (blocking; retried per ``BinanceRest``).

        Raises VenueTemporaryError when the venue stays unavailable, VenuePermanentError for a
        refused request, MalformedMessage for a bad body.
        """
        snap = self.rest.depth(symbol.upper(), self.snapshot_limit)
        self.counts[symbol.upper()]["snapshots"] += 1
        return snap

    # -- websocket thread (_run: ThreadedVenue) -------------------------------------------

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        if self._closed.is_set():
            return
        try:
            await self.stream.run()
        except asyncio.CancelledError:
            pass

    def _recycle_connection(self, cause: str) -> None:
        self.stream.reconnect(cause)

    def _on_connect(self) -> None:
        self.status.update(state="live", connected_at=now_ms(), reconnects=self.stream.reconnects)
        self._gap_cause = self._gap_cause or "connect"
        logger.info("%s: connected to %s", self.venue, self.url[:120])

    def _on_frame(self, text: str, ts_init_ms: int) -> None:
        """Parse, check and queue one frame (on the stream's loop; never raises)."""
        self.status["messages"] += 1
        self.status["last_message_ms"] = ts_init_ms
        try:
            event = parse_message(text)
        except MalformedMessage as exc:
            self._bad("malformed", _symbol_of(text, self.symbols), text, str(exc))
            return
        if event is None:
            self.counts[VENUE_KEY]["ignored"] += 1
            return
        symbol = event.symbol
        if symbol not in self._symbol_set:
            self._bad("unknown_symbol", None, text, f"symbol {symbol} is not subscribed")
            return
        counts = self.counts[symbol]
        counts["messages"] += 1
        if self._accept(event, counts, text):
            self._queue_event(event)

    def _accept(self, event: MarketEvent, counts: Counter[str], text: str) -> bool:
        """Drop (and count) repeated or impossible events; True to pass ``event`` on."""
        symbol = event.symbol
        if type(event) is Trade:
            if not (event.price > 0 and event.size > 0 and math.isfinite(event.price) and math.isfinite(event.size)):
                self._bad("rejected", symbol, text, "non-positive or non-finite price / size")
                return False
            if event.trade_id <= self._last_trade_id.get(symbol, -1):
                counts["duplicates"] += 1
                return False
            self._last_trade_id[symbol] = event.trade_id
            counts["trades"] += 1
            return True
        last_u = self._last_u.get(symbol, -1)
        if event.final_update_id <= last_u:
            counts["duplicates" if event.final_update_id == last_u else "out_of_order"] += 1
            return False
        self._last_u[symbol] = event.final_update_id
        counts["deltas"] += 1
        return True


def _symbol_of(text: str, symbols: list[str]) -> str | None:
    """The subscribed symbol a (bad) combined-stream frame names, if it can be read."""
    match = _STREAM_SYMBOL.search(text[:120])
    symbol = match.group(1).upper() if match else None
    return symbol if symbol in symbols else None


def stream_config_from_settings() -> StreamConfig:
    """The reconnect policy from ``GOGO_STREAM_*`` settings (backoff base / cap, max age, idle timeout)."""
    from django.conf import settings

    return StreamConfig(backoff=Backoff(settings.GOGO_STREAM_BACKOFF_BASE_S, settings.GOGO_STREAM_BACKOFF_CAP_S),
                        max_age_s=settings.GOGO_STREAM_MAX_AGE_S, idle_timeout_s=settings.GOGO_STREAM_IDLE_TIMEOUT_S)
