"""The threading shell shared by the live venues (Binance's LiveVenue, ccxt.pro's CcxtProVenue).

A venue runs its websocket on its own event-loop thread and hands parsed events to the consumer
(the Engine thread) through a queue:

- ``events()`` yields them in arrival order until :meth:`close`; a failure of the websocket thread
  (a :class:`~apps.market.venues.ccxt_rest.VenueError`, or a bug) is re-raised in the consumer,
  never lost with the thread.
- :meth:`_queue_event` is the one way in: it recycles the connection when ``queue_size`` events
  wait (cause "overflow", as Binance disconnects a slow client), closes a pending
  :class:`~ml.market.events.StreamGap` per symbol with the first event after a (re)connect, and
  tracks the last exchange time seen.
- No silent interpolation: the gap runs from the last exchange time seen before the loss (for the
  first connection, from the start of the first event's second: it began before we listened).

Subclasses set up their connection in ``_main`` (a coroutine run by :meth:`_run` with
``asyncio.run``), call :meth:`_on_disconnect` when a connection ends, and implement
:meth:`_recycle_connection` and ``_on_connect``.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from apps.market.venues.ccxt_rest import VenueError
from ml.market.events import StreamGap

logger = logging.getLogger(__name__)

VENUE_KEY = "_venue"  # counts of messages that name no subscribed symbol
LOG_CHARS = 200  # a bad message is logged truncated to this many characters
_END = object()


@dataclass(frozen=True, slots=True)
class _Failure:
    error: BaseException


class ThreadedVenue:
    """Queue, thread, status and gap marking of a live venue (module docstring).

    Attributes set by :meth:`_venue_init`: ``venue``, ``symbols`` (upper case), ``queue_size``,
    ``close_delay_ms``, ``rng``; ``counts`` (per symbol and ``VENUE_KEY``, a Counter), ``status``
    (``state`` connecting / live / reconnecting / stopped / failed, ``connected_at`` and
    ``last_message_ms`` in ms of our clock, ``reconnects``, ``errors``, ``error`` (the last one,
    500 characters at most), ``messages``).
    """

    thread_suffix = "ws"

    def _venue_init(self, *, venue: str, symbols: Sequence[str], queue_size: int, close_delay_ms: int,
                    rng: random.Random | None) -> None:
        self.venue, self.close_delay_ms, self.queue_size = venue, close_delay_ms, queue_size
        self.symbols = [s.upper() for s in symbols]
        self.rng = rng or random.Random()
        self.counts: dict[str, Counter[str]] = {s: Counter() for s in [*self.symbols, VENUE_KEY]}
        self.status: dict = {"state": "connecting", "connected_at": None, "last_message_ms": None, "reconnects": 0,
                             "errors": 0, "error": "", "messages": 0}
        self._queue: queue.Queue = queue.Queue()
        self._last_ts: int | None = None  # exchange time of the last event passed on (ms)
        self._gap_cause: str | None = None  # set at each (re)connect until the first event
        self._closed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._thread = threading.Thread(target=self._run, name=f"gogo-{venue}-{self.thread_suffix}", daemon=True)

    # -- consumer side ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the websocket thread (done by the constructor unless ``start=False``)."""
        if not self._thread.is_alive() and not self._closed.is_set():
            self._thread.start()

    def events(self) -> Iterator:
        """Events in arrival order until :meth:`close` (then the iterator ends; a second iteration
        ends too). Raises what stopped the websocket thread (VenuePermanentError when the venue
        refused the stream) and what a subclass's follow-up (:meth:`_after`) raises."""
        while True:
            item = self._queue.get()
            if item is _END:
                self._queue.put(_END)
                return
            if type(item) is _Failure:
                raise item.error
            yield item
            extra = self._after(item)
            if extra is not None:
                yield extra

    def _after(self, item: object) -> object | None:
        """An event to yield right after ``item`` on the consumer's thread (e.g. a REST snapshot
        after a symbol's first diff), or None."""
        return None

    @property
    def pending(self) -> int:
        """Events received and not yet taken by ``events()``."""
        return self._queue.qsize()

    def close(self) -> None:
        """Stop the websocket thread; ``events()`` ends after the events already queued. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._task.cancel)
            except RuntimeError:  # the stream thread ended (failed) and closed its loop meanwhile
                pass
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)
        if self.status["state"] != "failed":
            self.status["state"] = "stopped"
        self._queue.put(_END)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- websocket thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # VenueError or a bug: surface it in the consumer, not with the thread
            logger.error("%s: stream stopped: %s", self.venue, exc, exc_info=not isinstance(exc, VenueError))
            self._error(f"{type(exc).__name__}: {exc}")
            self.status["state"] = "failed"
            self._queue.put(_Failure(exc))

    async def _main(self) -> None:  # pragma: no cover - every venue has its own
        raise NotImplementedError

    def _recycle_connection(self, cause: str) -> None:  # pragma: no cover - every venue has its own
        """Close the current connection and reconnect (on the stream's loop)."""
        raise NotImplementedError

    def _on_disconnect(self, cause: str, error: str) -> None:
        """A connection ended: ``cause`` ("closed", "idle", "rotation", "connect_failed", ...)."""
        if self._closed.is_set():
            return
        self.status["state"] = "reconnecting"
        if error:
            self._error(error)
        logger.warning("%s: connection ended (%s) %s; reconnecting", self.venue, cause, error[:200])
        if cause != "connect_failed" or self._gap_cause is None:
            self._gap_cause = cause if self._last_ts is not None else "connect"

    def _queue_event(self, event) -> None:
        """Pass one checked event to the consumer (module docstring: overflow, gaps)."""
        if self._queue.qsize() >= self.queue_size:
            self.counts[VENUE_KEY]["overflow"] += 1
            logger.error("%s: %d events wait for the consumer; recycling the connection", self.venue,
                         self._queue.qsize())
            self._recycle_connection("overflow")
            return
        if self._gap_cause is not None:
            self._emit_gaps(event.ts_event)
        self._last_ts = event.ts_event if self._last_ts is None else max(self._last_ts, event.ts_event)
        self._queue.put(event)

    def _emit_gaps(self, to_ms: int) -> None:
        cause, self._gap_cause = self._gap_cause, None
        from_ms = to_ms - to_ms % 1000 if self._last_ts is None else min(self._last_ts, to_ms)
        for symbol in self.symbols:
            self.counts[symbol]["stream_gaps"] += 1
            self._queue.put(StreamGap(symbol, from_ms, to_ms, cause))
        logger.info("%s: stream gap %d..%d (%s) on %s", self.venue, from_ms, to_ms, cause, ",".join(self.symbols))

    def _error(self, text: str) -> None:
        self.status["errors"] += 1
        self.status["error"] = text[:500]

    def _bad(self, kind: str, symbol: str | None, text: str, why: str) -> None:
        """Count and log a skipped message (``kind``: malformed, rejected, unknown_symbol, ...)."""
        self.counts[symbol or VENUE_KEY][kind] += 1
        logger.warning("%s: %s message skipped (%s): %s", self.venue, kind, why, text[:LOG_CHARS])


def now_ms() -> int:
    """Our clock, ms since the epoch."""
    return time.time_ns() // 1_000_000
