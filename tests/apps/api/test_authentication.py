"""The per-process token cache (apps.api.authentication): a hit skips the token and role queries;
a revoked token or a changed role applies within GOGO_API_TOKEN_CACHE_S; 0 turns the cache off."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from apps.api.authentication import token_cache_clear

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    token_cache_clear()
    yield
    token_cache_clear()


def test_a_cached_token_costs_no_auth_query(as_viewer):
    as_viewer.get("/api/v1/instruments/")
    with CaptureQueriesContext(connection) as queries:
        assert as_viewer.get("/api/v1/instruments/").status_code == 200
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "authtoken_token" not in sql and "auth_group" not in sql


def test_a_revoked_token_or_changed_role_applies_within_the_cache_time(settings, as_viewer, viewer):
    settings.GOGO_API_TOKEN_CACHE_S = 3600.0
    assert as_viewer.post("/api/v1/control/trading/", {}, format="json").status_code == 403
    viewer.groups.add(Group.objects.get(name="trader"))
    assert as_viewer.post("/api/v1/control/trading/", {}, format="json").status_code == 403  # cached role
    Token.objects.filter(user=viewer).delete()
    assert as_viewer.get("/api/v1/instruments/").status_code == 200  # cached token
    token_cache_clear()
    assert as_viewer.get("/api/v1/instruments/").status_code == 401


def test_without_the_cache_a_revoked_token_fails_at_once(settings, as_viewer, viewer):
    settings.GOGO_API_TOKEN_CACHE_S = 0.0
    assert as_viewer.get("/api/v1/instruments/").status_code == 200
    Token.objects.filter(user=viewer).delete()
    assert as_viewer.get("/api/v1/instruments/").status_code == 401
