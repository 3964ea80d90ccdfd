"""Readiness checks for load balancers: database, Redis, Celery workers, market stream freshness.

Each check returns ``{"ok": bool, "detail": str, ...}``; nothing secret (no URL, no password) is
ever in a detail. A check that does not apply (no broker configured, no stream wanted) is ok.
"""
from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)


def readiness() -> dict:
    """``{"ready": bool, "checks": {"database"|"redis"|"workers"|"streams": {...}}}``; ready when every check is ok."""
    checks = {"database": _timed(_database), "redis": _timed(_redis), "workers": _timed(_workers),
              "streams": _timed(_streams)}
    return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:  # a failing dependency is a failed check, never a 500
        logger.warning("readiness check %s failed: %s", check.__name__, type(exc).__name__)
        result = {"ok": False, "detail": f"{type(exc).__name__}"}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "detail": connection.vendor}


def _redis() -> dict:
    if not settings.REDIS_URL:
        return {"ok": True, "detail": "not configured (embedded)"}
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True, "detail": "ping"}


def _workers() -> dict:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"ok": True, "detail": "tasks run in-process (no broker configured)"}
    from gogo.celery import app

    replies = app.control.inspect(timeout=1).ping() or {}
    return {"ok": bool(replies), "detail": f"{len(replies)} worker(s) answered", "workers": sorted(replies)}


def _streams() -> dict:
    """Every stream the user wants running received a message within GOGO_READY_STREAM_MAX_AGE_S."""
    from apps.market.models import MarketStream

    max_age = settings.GOGO_READY_STREAM_MAX_AGE_S
    wanted = MarketStream.objects.filter(desired=MarketStream.Desired.RUNNING, instrument__enabled=True) \
        .select_related("instrument")
    if max_age <= 0:
        return {"ok": True, "detail": "freshness check off"}
    now = timezone.now()
    stale = [f"{s.instrument.symbol}@{s.instrument.venue}" for s in wanted
             if s.last_message_at is None or (now - s.last_message_at).total_seconds() > max_age]
    count = len(wanted)
    return {"ok": not stale, "detail": f"{count - len(stale)}/{count} running streams fresh (<= {max_age:g} s)",
            "stale": stale}
