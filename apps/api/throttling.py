"""Per-user and per-IP (anonymous) request rates; the rates are read from settings at each request
so that a changed setting applies at once (DRF's own classes read them once, at import).

With Redis (``REDIS_URL``) each rate is a sliding-window log in one sorted set per client, kept in
one pipelined round trip per request (DRF's default reads and rewrites a pickled list through the
cache: two round trips). Without Redis (the embedded default) DRF's cache-based throttle runs.
"""
from __future__ import annotations

import itertools
import math
import time

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

_clients: dict[str, object] = {}
_sequence = itertools.count()


def redis_client(url: str):
    """One client (connection pool) per process and URL (the throttles and the candles hot cache)."""
    client = _clients.get(url)
    if client is None:
        import redis

        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client


class _SettingsRate:
    def get_rate(self) -> str | None:
        return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(self.scope)

    def allow_request(self, request, view) -> bool:
        if self.rate is None or not settings.REDIS_URL:
            return SimpleRateThrottle.allow_request(self, request, view)
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = time.time()
        member = f"{now:.6f}:{next(_sequence)}"
        pipe = redis_client(settings.REDIS_URL).pipeline(transaction=False)
        pipe.zremrangebyscore(key, 0, now - self.duration)
        pipe.zadd(key, {member: now})
        pipe.zcard(key)
        pipe.zrange(key, 0, 0, withscores=True)
        pipe.expire(key, math.ceil(self.duration) + 1)
        _, _, count, oldest, _ = pipe.execute()
        if count <= self.num_requests:
            return True
        redis_client(settings.REDIS_URL).zrem(key, member)  # a refused request does not use up the window
        self._wait = max(0.0, (oldest[0][1] if oldest else now) + self.duration - now)
        return False

    def wait(self) -> float | None:
        if settings.REDIS_URL and self.rate is not None:
            return getattr(self, "_wait", None)
        return SimpleRateThrottle.wait(self)


class UserRate(_SettingsRate, UserRateThrottle):
    """REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"] per authenticated user (GOGO_API_USER_RATE)."""


class AnonRate(_SettingsRate, AnonRateThrottle):
    """REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anon"] per client IP (GOGO_API_ANON_RATE)."""
