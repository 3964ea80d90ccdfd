"""Live market streams: what the user wants (``MarketStream.desired``) and who runs it (a lease).

One live stream per (venue, instrument) across the whole cluster. A worker that wants to run an
instrument's stream must hold its lease: a Redis key ``gogo:lease:stream:<venue>:<symbol>`` set
with NX and a TTL (redis-py's ``Lock``, renewed with ``extend`` while the stream runs). A worker
that dies stops renewing; the key expires after ``LEASE_TTL_S`` and the watchdog
(:func:`stream_start_due`, every 30 s on beat and at every ingest worker's start) hands the
stream to a live worker. Without Redis (the embedded default) the lease is a lock in this
process, which is the whole cluster there.

Services here are the only writers of ``MarketStream``; the admin, the dashboard and the workers
call them.
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.market.models import Instrument, MarketStream

logger = logging.getLogger(__name__)

LEASE_TTL_S = 30  # a dead worker's streams are taken over after at most this long (plus a watchdog period)
STALE_AFTER_S = 30  # a running stream's row is rewritten every second; older means its worker is gone
_local_leases: dict[str, str] = {}
_local_lock = threading.Lock()


def lease_key(instrument: Instrument) -> str:
    return f"gogo:lease:stream:{instrument.venue}:{instrument.symbol}"


class StreamLease:
    """The right to run one instrument's live stream, held by one worker at a time.

    ``acquire()`` returns False when another holder has it; ``renew()`` extends it by
    ``LEASE_TTL_S`` and returns False when it was lost (expired and taken, or deleted);
    ``release()`` gives it up if still ours. Thread-safe; never raises for a lost lease.
    """

    def __init__(self, instrument: Instrument, ttl_s: float = LEASE_TTL_S) -> None:
        self.key = lease_key(instrument)
        self.ttl_s = ttl_s
        self.token = uuid.uuid4().hex
        self._lock = None
        if settings.REDIS_URL:
            self._lock = _redis().lock(self.key, timeout=ttl_s, blocking=False, thread_local=False)

    def acquire(self) -> bool:
        if self._lock is not None:
            return bool(self._lock.acquire(blocking=False, token=self.token))
        with _local_lock:
            if self.key in _local_leases:
                return False
            _local_leases[self.key] = self.token
            return True

    def renew(self) -> bool:
        if self._lock is not None:
            from redis.exceptions import LockError

            try:
                return bool(self._lock.reacquire())
            except LockError:
                return False
        with _local_lock:
            return _local_leases.get(self.key) == self.token

    def release(self) -> None:
        if self._lock is not None:
            from redis.exceptions import LockError

            try:
                self._lock.release()
            except LockError:
                pass  # expired or taken over: nothing of ours to release
            return
        with _local_lock:
            if _local_leases.get(self.key) == self.token:
                del _local_leases[self.key]

    def held_elsewhere(self) -> bool:
        """True when someone (another worker) holds this key now."""
        if self._lock is not None:
            return bool(self._lock.locked()) and not self._lock.owned()
        with _local_lock:
            return self.key in _local_leases and _local_leases[self.key] != self.token


def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL)


def stream_get(*, instrument: Instrument) -> MarketStream:
    stream, _ = MarketStream.objects.get_or_create(instrument=instrument)
    return stream


def stream_request(*, instruments: Iterable[Instrument], desired: str) -> list[MarketStream]:
    """Set what the user wants for each instrument's stream (RUNNING or STOPPED) and act on it.

    RUNNING: a session for the instrument's venue is enqueued after the commit (a worker already
    running the venue picks the change up within a second instead). STOPPED: the running session
    drops the instrument at its next check (about a second) and releases its lease.
    Raises ValueError for an unknown ``desired`` or a disabled instrument asked to run.
    """
    if desired not in MarketStream.Desired.values:
        raise ValueError(f"desired must be one of {MarketStream.Desired.values}, got {desired!r}")
    streams = []
    venues = set()
    with transaction.atomic():
        for instrument in instruments:
            if desired == MarketStream.Desired.RUNNING and not instrument.enabled:
                raise ValueError(f"{instrument} is disabled; enable it before starting its stream")
            stream = stream_get(instrument=instrument)
            stream.desired = desired
            stream.save(update_fields=["desired", "updated_at"])
            streams.append(stream)
            venues.add(instrument.venue)
        if desired == MarketStream.Desired.RUNNING:
            transaction.on_commit(lambda: [stream_session_enqueue(venue=v) for v in sorted(venues)])
    return streams


def streams_wanted(*, venue: str) -> list[Instrument]:
    """Enabled instruments of ``venue`` whose stream the user wants running (traded one first)."""
    rows = Instrument.objects.filter(venue=venue, enabled=True, stream__desired=MarketStream.Desired.RUNNING)
    return sorted(rows, key=lambda i: (not i.is_traded, i.symbol))


def stream_session_enqueue(*, venue: str) -> None:
    """Start a session for ``venue``: the ``ingest`` queue (workers), or a thread of this process
    (embedded); ``workers.ingest.market_stream_start`` decides. (The session loop belongs to
    ``apps.pipeline``, which depends on this app, so it is reached through the task module.)"""
    from workers.ingest import market_stream_start

    market_stream_start(venue)


def venues_wanted() -> list[str]:
    """Venues with at least one enabled instrument whose stream the user wants running."""
    venues = MarketStream.objects.filter(desired=MarketStream.Desired.RUNNING, instrument__enabled=True) \
        .values_list("instrument__venue", flat=True).distinct()
    return sorted(set(venues))


def stream_start_due() -> list[str]:
    """Watchdog: enqueue a session for every venue with a wanted stream whose lease nobody holds.

    Returns the venues enqueued. Safe to run anywhere, any number of times: a session that finds
    its leases taken exits at once.
    """
    due = []
    for venue in venues_wanted():
        instruments = streams_wanted(venue=venue)
        if any(not StreamLease(i).held_elsewhere() for i in instruments):
            stream_session_enqueue(venue=venue)
            due.append(venue)
    return due


def stream_status_set(*, instruments: Iterable[Instrument], status: str, **fields) -> int:
    """Write the running worker's view of the streams (status and counters); returns rows updated."""
    ids = [i.pk for i in instruments]
    for instrument_id in ids:
        MarketStream.objects.get_or_create(instrument_id=instrument_id)
    return MarketStream.objects.filter(instrument_id__in=ids).update(status=status, updated_at=timezone.now(), **fields)


def stream_defaults_ensure() -> None:
    """A MarketStream row (stopped) per instrument and the 30 s stream watchdog in
    django-celery-beat (``workers.ingest.streams_watchdog``); idempotent, admin edits kept."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for instrument in Instrument.objects.all():
        MarketStream.objects.get_or_create(instrument=instrument)
    every_30s, _ = IntervalSchedule.objects.get_or_create(every=30, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.get_or_create(name="market stream watchdog", defaults={
        "task": "workers.ingest.streams_watchdog", "interval": every_30s, "queue": "default"})


def _shown_status(stream: MarketStream, stale_before) -> str:
    """The stored status, or "stale" for a live/connecting stream whose worker stopped reporting
    (it died without cleaning up; the watchdog hands the stream to another worker)."""
    active = stream.status in (MarketStream.Status.LIVE, MarketStream.Status.CONNECTING, MarketStream.Status.RECONNECTING)
    return "stale" if active and stream.updated_at < stale_before else stream.status


def streams_payload() -> list[dict]:
    """Every configured stream, for the dashboard: instrument, desired, status ("stale" when its
    worker stopped reporting for STALE_AFTER_S), counters."""
    rows = MarketStream.objects.select_related("instrument").order_by("instrument__venue", "instrument__symbol")
    stale_before = timezone.now() - timedelta(seconds=STALE_AFTER_S)
    return [{"instrument": s.instrument_id, "symbol": s.instrument.symbol, "venue": s.instrument.venue,
             "desired": s.desired, "status": _shown_status(s, stale_before), "worker": s.worker, "messages": s.messages,
             "reconnects": s.reconnects, "gaps": s.gaps, "rejected": s.rejected, "error": s.error,
             "last_message_at": s.last_message_at.isoformat() if s.last_message_at else None}
            for s in rows]
