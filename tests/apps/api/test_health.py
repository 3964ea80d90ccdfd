"""Health and readiness probes."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.market.models import MarketStream

pytestmark = pytest.mark.django_db


def test_health_answers_without_credentials(client):
    assert client.get("/api/v1/health/").json() == {"status": "ok"}


def test_ready_checks_the_database_redis_workers_and_streams(client):
    response = client.get("/api/v1/ready/")
    body = response.json()
    assert response.status_code == 200 and body["ready"]
    assert set(body["checks"]) == {"database", "redis", "workers", "streams"}
    assert body["checks"]["database"]["detail"] == "postgresql" and body["checks"]["redis"]["ok"]
    assert "redis://" not in response.content.decode()


def test_a_stale_wanted_stream_makes_the_server_not_ready(client, eth):
    MarketStream.objects.filter(instrument=eth).update(desired="running", last_message_at=timezone.now() - timedelta(minutes=5))
    response = client.get("/api/v1/ready/")
    assert response.status_code == 503
    assert response.json()["checks"]["streams"]["stale"] == ["ETHUSDT@binance"]
    MarketStream.objects.filter(instrument=eth).update(last_message_at=timezone.now())
    assert client.get("/api/v1/ready/").status_code == 200


def test_unreachable_redis_is_a_503_naming_the_check(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/api/v1/ready/")
    assert response.status_code == 503 and not response.json()["checks"]["redis"]["ok"]
