"""Per-user request rates (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], from GOGO_API_USER_RATE)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_a_user_over_the_rate_gets_429_with_retry_after_and_others_are_unaffected(settings, as_viewer, as_trader):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "3/min"}}
    statuses = [as_viewer.get("/api/v1/instruments/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert int(as_viewer.get("/api/v1/instruments/")["Retry-After"]) > 0
    assert as_trader.get("/api/v1/instruments/").status_code == 200


def test_health_probes_are_never_throttled(settings, client):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "anon": "1/min"}}
    assert {client.get("/api/v1/health/").status_code for _ in range(3)} == {200}
