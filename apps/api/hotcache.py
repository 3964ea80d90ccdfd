"""A hot cache of rendered API pages (bytes) for public market data that every user may read.

With Redis (``REDIS_URL``) the bytes go straight to Redis through the throttles' client (one plain
GET per hit: no pickling, and no new client object per call as Django's RedisCache makes); without
Redis (the embedded default) Django's cache (local memory) holds them.
"""
from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from apps.api.throttling import redis_client

logger = logging.getLogger(__name__)
_PREFIX = "gogo:api:page:"


def page_key(*, name: str, url: str) -> str:
    """The cache key of the page ``name`` (e.g. ``"candles"``) at the absolute ``url`` (scheme, host,
    path and the full query string: the pages hold absolute ``next``/``previous`` links)."""
    return f"{_PREFIX}{name}:{hashlib.blake2b(url.encode(), digest_size=16).hexdigest()}"


def page_get(key: str) -> bytes | None:
    """The cached bytes at ``key``, or None (also when Redis does not answer: the caller builds the page)."""
    if not settings.REDIS_URL:
        return cache.get(key)
    try:
        return redis_client(settings.REDIS_URL).get(key)
    except (RedisError, OSError) as exc:  # redis-py's ConnectionError / TimeoutError are RedisErrors
        logger.warning("page cache get failed: %s", exc)
        return None


def page_set(key: str, body: bytes, *, ttl_s: float) -> None:
    """Keep ``body`` at ``key`` for ``ttl_s`` seconds (rounded up to whole milliseconds)."""
    if not settings.REDIS_URL:
        cache.set(key, body, ttl_s)
        return
    try:
        redis_client(settings.REDIS_URL).set(key, body, px=max(1, round(ttl_s * 1000)))
    except (RedisError, OSError) as exc:
        logger.warning("page cache set failed: %s", exc)


def page_cache_clear() -> int:
    """Drop every cached page from Redis (after a correction of stored history that must show at
    once; tests). Returns how many were dropped. Without Redis the local entries expire within their TTL."""
    if not settings.REDIS_URL:
        return 0
    client = redis_client(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{_PREFIX}*", count=1000))
    return client.delete(*keys) if keys else 0
