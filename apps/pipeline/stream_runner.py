"""The live session loop: the wanted streams of one venue, leased, through the engine on the venue client,
supervised, with their status written. (The replay's loop is ``apps.pipeline.runner``; both drive
the engine through its public API. It lives here, not in ``apps.market``: the pipeline depends on
the market app, never the reverse; docs/architecture.md, "The engine".)

``stream_session_run`` is the body of the Celery ``ingest`` task (``workers.ingest.run_market_stream``)
and of the embedded default's session thread. It holds the leases of every wanted instrument of
the venue (``apps.market.streams``), runs :class:`apps.pipeline.engine.Engine` on a
:func:`apps.market.venues.open_venue` (our Binance client, or ccxt.pro for Bybit and MEXC), and,
once a second on a supervisor thread:

- renews the leases (a lost lease stops the session: another worker owns the stream now);
- re-reads what the user wants: an instrument stopped or started restarts the session with the
  new set (a new snapshot per book; the engine's stores are idempotent), nothing wanted ends it;
- writes each stream's status and counters to ``MarketStream`` and tells the dashboards.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db import connection
from django.utils import timezone

from apps.market.convert import ms_to_datetime
from apps.market.models import Instrument, MarketStream
from apps.market.streams import StreamLease, stream_status_set, streams_payload, streams_wanted

if TYPE_CHECKING:  # the engine (torch, the models) is imported when a session starts, not with this module
    from apps.pipeline.engine import Engine

logger = logging.getLogger(__name__)

SUPERVISE_EVERY_S = 1.0
GROUP = "dashboard"
SERVER_LOOP: asyncio.AbstractEventLoop | None = None  # embedded: the ASGI server's loop (set at startup)
# Set when this process shuts down (Celery's worker_shutting_down, the server's lifespan shutdown):
# every session here stops within a second and releases its leases, so the next worker resumes at
# once instead of after the lease TTL. The streams stay wanted (``desired`` is untouched).
SHUTDOWN = threading.Event()
_embedded_threads: dict[str, threading.Thread] = {}


def stream_session_run(*, venue: str, publish: Callable[[dict], None] | None = None) -> dict:
    """Run ``venue``'s wanted streams until none is wanted or the leases are lost.

    Returns {"status": "busy" | "stopped" | "lease lost" | "shutdown" | "nothing wanted", "sessions": n,
    "summary": the last engine summary}. Raises nothing for venue trouble (the venue reconnects
    by itself); an unexpected error is logged, stored on the streams as FAILED and re-raised.
    """
    instruments = streams_wanted(venue=venue)
    if not instruments:
        return {"status": "nothing wanted", "sessions": 0, "summary": None}
    if not any(i.is_traded for i in instruments):
        # The engine builds BaseDataInput around the traded instrument: a reference alone has no session.
        error = "a stream session needs the traded instrument among its streams: start it too"
        stream_status_set(instruments=instruments, status=MarketStream.Status.FAILED, error=error)
        _publish_streams(publish)
        return {"status": "failed", "sessions": 0, "summary": None, "error": error}
    leases: dict[int, StreamLease] = {}
    if not _lease_all(instruments, leases):
        logger.info("%s streams already run by another worker", venue)
        return {"status": "busy", "sessions": 0, "summary": None}
    sessions, summary, reason = 0, None, "stopped"
    try:
        while instruments:
            sessions += 1
            reason, summary = _run_once(venue, instruments, leases, publish)
            if reason != "changed":
                break
            wanted = streams_wanted(venue=venue)
            for pk in [pk for pk in leases if pk not in {i.pk for i in wanted}]:
                leases.pop(pk).release()
                stream_status_set(instruments=Instrument.objects.filter(pk=pk), status=MarketStream.Status.STOPPED)
            if not _lease_all(wanted, leases):
                reason = "busy"
                break
            instruments = wanted
    except Exception as exc:
        stream_status_set(instruments=instruments, status=MarketStream.Status.FAILED, error=str(exc)[:500])
        logger.exception("%s stream session failed", venue)
        raise
    finally:
        for lease in leases.values():
            lease.release()
    if reason not in ("lease lost", "busy"):
        stream_status_set(instruments=Instrument.objects.filter(pk__in=list(leases)), status=MarketStream.Status.STOPPED)
    _publish_streams(publish)
    return {"status": reason, "sessions": sessions, "summary": summary}


def _lease_all(instruments: list[Instrument], leases: dict[int, StreamLease]) -> bool:
    for instrument in instruments:
        if instrument.pk in leases:
            continue
        lease = StreamLease(instrument)
        if not lease.acquire():
            return False
        leases[instrument.pk] = lease
    return True


def _run_once(venue: str, instruments: list[Instrument], leases: dict[int, StreamLease],
              publish: Callable[[dict], None] | None) -> tuple[str, dict | None]:
    from apps.market.venues import open_venue
    from apps.pipeline.engine import Engine

    symbols = [i.symbol for i in instruments]
    live = open_venue(venue=venue, symbols=symbols)
    stop = threading.Event()
    outcome = {"reason": "stopped"}
    worker = socket.gethostname()
    stream_status_set(instruments=instruments, status=MarketStream.Status.CONNECTING, worker=worker, error="",
                      connected_at=timezone.now())
    holder: dict = {"engine": None}
    supervisor = threading.Thread(target=_supervise, name=f"gogo-stream-{venue}", daemon=True,
                                  args=(venue, instruments, leases, live, stop, outcome, publish, holder))
    supervisor.start()
    engine = None
    try:
        engine = holder["engine"] = Engine(venue=live)
        for update in engine.run():
            if publish is not None:
                publish(update)
            if stop.is_set():
                break
    finally:
        stop.set()
        live.close()
        supervisor.join(timeout=5)
        if engine is not None:
            engine.flush()
    return outcome["reason"], engine.summary() if engine is not None else None


def _supervise(venue: str, instruments: list[Instrument], leases: dict[int, StreamLease], live, stop: threading.Event,
               outcome: dict, publish: Callable[[dict], None] | None, holder: dict) -> None:
    wanted = {i.pk for i in instruments}
    try:
        while not stop.wait(SUPERVISE_EVERY_S):
            if SHUTDOWN.is_set():
                outcome["reason"] = "shutdown"
                break
            if not all(lease.renew() for lease in leases.values()):
                logger.warning("%s: stream lease lost; another worker runs it now", venue)
                outcome["reason"] = "lease lost"
                break
            now_wanted = {i.pk for i in streams_wanted(venue=venue)}
            if now_wanted != wanted:
                outcome["reason"] = "changed" if now_wanted else "stopped"
                break
            _status_write(instruments, live, holder["engine"])
            _publish_streams(publish)
    except Exception:  # the supervisor must not die silently: stop the session instead
        logger.exception("%s: stream supervisor failed", venue)
        outcome["reason"] = "failed"
    finally:
        stop.set()
        live.close()
        connection.close()  # this thread's own connection


_STATUS = {"connecting": MarketStream.Status.CONNECTING, "live": MarketStream.Status.LIVE,
           "reconnecting": MarketStream.Status.RECONNECTING, "stopped": MarketStream.Status.STOPPED,
           "failed": MarketStream.Status.FAILED}


def _status_write(instruments: list[Instrument], live, engine) -> None:
    status = dict(live.status)
    state = _STATUS.get(str(status.get("state")), MarketStream.Status.CONNECTING)
    last_ms = status.get("last_message_ms")
    for instrument in instruments:
        counts = live.counts.get(instrument.symbol, {})
        fields = {"reconnects": int(status.get("reconnects", 0)),
                  "messages": int(counts.get("messages", 0)),
                  "rejected": int(counts.get("malformed", 0)) + int(counts.get("rejected", 0)),
                  "gaps": int(counts.get("stream_gaps", 0)) + _sequence_gaps(engine, instrument.symbol),
                  "error": str(status.get("error") or "")[:500]}
        if last_ms:
            fields["last_message_at"] = ms_to_datetime(int(last_ms))
        stream_status_set(instruments=[instrument], status=state, **fields)


def _sequence_gaps(engine: Engine | None, symbol: str) -> int:
    return int(engine.counters[symbol].sequence_gaps) if engine is not None and symbol in engine.counters else 0


def _publish_streams(publish: Callable[[dict], None] | None) -> None:
    if publish is not None:
        publish({"type": "streams", "streams": streams_payload()})


def publish_blocking(update: dict) -> None:
    """Workers: send an update to every dashboard through the channel layer (Redis)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    async_to_sync(get_channel_layer().group_send)(GROUP, _event(update))


def _event(update: dict) -> dict:
    if update.get("type") == "streams":
        return {"type": "streams.state", "streams": update["streams"]}
    return {"type": "tick", "payload": update}


def publish_to_server_loop(update: dict) -> None:
    """Embedded: the in-memory channel layer lives on the server loop; hand the send to it."""
    from channels.layers import get_channel_layer

    if SERVER_LOOP is None or SERVER_LOOP.is_closed():
        return
    asyncio.run_coroutine_threadsafe(get_channel_layer().group_send(GROUP, _event(update)), SERVER_LOOP)


def embedded_start(*, venue: str) -> bool:
    """Embedded default: run the venue's session on a thread of this process (no-op if one runs)."""
    current = _embedded_threads.get(venue)
    if current is not None and current.is_alive():
        return False

    def body() -> None:
        try:
            stream_session_run(venue=venue, publish=publish_to_server_loop)
        except Exception:
            logger.exception("embedded %s stream session failed", venue)
        finally:
            connection.close()

    thread = threading.Thread(target=body, name=f"gogo-ingest-{venue}", daemon=True)
    _embedded_threads[venue] = thread
    thread.start()
    return True
