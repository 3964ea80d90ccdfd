"""Per-user and per-IP (anonymous) request rates; the rates are read from settings at each request
so that a changed setting applies at once (DRF's own classes read them once, at import)."""
from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class _SettingsRate:
    def get_rate(self) -> str | None:
        return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(self.scope)


class UserRate(_SettingsRate, UserRateThrottle):
    """REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"] per authenticated user (GOGO_API_USER_RATE)."""


class AnonRate(_SettingsRate, AnonRateThrottle):
    """REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anon"] per client IP (GOGO_API_ANON_RATE)."""
