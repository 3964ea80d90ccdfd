"""Token authentication with a short per-process cache, so the API's hot path does not look the
token (and the user's role) up in the database on every request.

A cache hit skips the ``authtoken_token`` join and the role's group query; a miss (or an expired
entry) does both through DRF's ``TokenAuthentication`` and stores ``(user, token, role)`` for
``GOGO_API_TOKEN_CACHE_S`` seconds (default 10; 0 turns the cache off). The price: a deleted
token, a deactivated user or a changed role takes effect within that many seconds rather than at
once, in each server process. Each request gets its own copy of the cached user.
"""
from __future__ import annotations

import copy
import time

from django.conf import settings
from rest_framework.authentication import TokenAuthentication

from apps.accounts.permissions import remember_role
from apps.accounts.roles import user_role

_MAX_ENTRIES = 10_000
_cache: dict[str, tuple[float, object, object, str | None]] = {}


def token_cache_clear() -> None:
    """Forget every cached token (tests; a process that revoked tokens and must not wait)."""
    _cache.clear()


class CachedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>`` (DRF's), cached per process (module docstring). Raises
    AuthenticationFailed (401) for an unknown key or an inactive user, as DRF's does."""

    def authenticate_credentials(self, key: str):
        ttl = getattr(settings, "GOGO_API_TOKEN_CACHE_S", 0.0)
        now = time.monotonic()
        hit = _cache.get(key) if ttl > 0 else None
        if hit is not None and hit[0] > now:
            user = copy.copy(hit[1])
            return remember_role(user, hit[3]), hit[2]
        user, token = super().authenticate_credentials(key)
        role = user_role(user)
        if ttl > 0:
            if len(_cache) >= _MAX_ENTRIES:
                _cache.clear()
            _cache[key] = (now + ttl, copy.copy(user), token, role)
        return remember_role(user, role), token
