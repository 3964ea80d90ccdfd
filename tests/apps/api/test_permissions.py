"""Generated over every operation of the OpenAPI schema (and every route of the resolver): who may call what."""
from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.permissions import SAFE_METHODS

from apps.accounts.permissions import IsAdminOrReadOnly, IsAdminRole, IsTraderOrReadOnly
from tests.apps.api.conftest import PUBLIC_OPERATIONS, owned_rows, path_for, row_ids, schema_operations, snapshot

pytestmark = pytest.mark.django_db

OPERATIONS = schema_operations()
PROTECTED = [(p, m) for p, m, _ in OPERATIONS if (p, m) not in PUBLIC_OPERATIONS]
WRITES = [(p, m) for p, m in PROTECTED if m.upper() not in SAFE_METHODS]


def test_the_schema_lists_every_api_route():
    """Nothing under /api/v1/ escapes the generated tests: every resolver route is in the schema
    (except the schema, its UI, the router's index and format-suffix variants)."""
    schema_paths = {p for p, _, _ in OPERATIONS}
    routes = set()

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                routes.add((prefix + str(entry.pattern), entry.name))

    walk(get_resolver().url_patterns, "/")
    api = {(r, n) for r, n in routes
           if r.startswith("/api/v1/") and "format" not in r and n not in ("schema", "docs", "api-root")}
    normalized = {re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: "{id}" if m.group(1) == "pk" else f"{{{m.group(1)}}}", r)
                  .replace("^", "").replace("$", "") for r, _ in api}
    assert normalized <= schema_paths, sorted(normalized - schema_paths)
    assert len(OPERATIONS) >= 20


@pytest.mark.parametrize(("path", "method"), PROTECTED, ids=[f"{m} {p}" for p, m in PROTECTED])
def test_an_anonymous_request_is_refused_with_401(client, path, method, eth, market_rows, trader):
    response = getattr(client, method)(path_for(path, row_ids(eth, owned_rows(trader, eth))),
                                       content_type="application/json")
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == 'Token'


@pytest.mark.parametrize(("path", "method"), PUBLIC_OPERATIONS, ids=[f"{m} {p}" for p, m in PUBLIC_OPERATIONS])
def test_public_operations_answer_anonymous_requests(client, path, method):
    response = getattr(client, method)(path, content_type="application/json")
    assert response.status_code in (200, 400, 503), response.content  # token: 400 without credentials


@pytest.mark.parametrize(("path", "method"), WRITES, ids=[f"{m} {p}" for p, m in WRITES])
def test_a_viewer_may_not_write_anything_even_on_their_own_rows(as_viewer, viewer, path, method, eth, market_rows):
    target = path_for(path, row_ids(eth, owned_rows(viewer, eth)))
    before = snapshot()
    response = getattr(as_viewer, method)(target, {}, format="json")
    assert response.status_code == 403, response.content
    assert snapshot() == before


@pytest.mark.parametrize(("path", "method"), WRITES, ids=[f"{m} {p}" for p, m in WRITES])
def test_a_trader_writes_only_where_traders_may(as_trader, trader, path, method, eth, market_rows):
    target = path_for(path, row_ids(eth, owned_rows(trader, eth)))
    permissions = set(getattr(_view_of(target).cls, "permission_classes", []))
    response = getattr(as_trader, method)(target, {}, format="json")
    if permissions & {IsAdminOrReadOnly, IsAdminRole}:
        assert response.status_code == 403, response.content
    else:
        assert IsTraderOrReadOnly in permissions
        assert response.status_code != 403, response.content


@pytest.mark.parametrize(("path", "method"), [(p, m) for p, m in PROTECTED if m == "get"],
                         ids=[f"get {p}" for p, m in PROTECTED if m == "get"])
def test_every_role_reads_every_list_and_detail_of_its_own(as_viewer, viewer, path, method, eth, market_rows):
    target = path_for(path, row_ids(eth, owned_rows(viewer, eth)))
    response = as_viewer.get(target)
    if IsAdminRole in set(getattr(_view_of(target).cls, "permission_classes", [])):
        assert response.status_code == 403, response.content  # the audit log
    else:
        assert response.status_code == 200, response.content


def test_the_schema_and_its_ui_are_served_without_a_cdn(client):
    assert client.get("/api/v1/schema/").status_code == 200
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower() and b"/static/drf_spectacular_sidecar/" in docs.content


def _view_of(path: str):
    from django.urls import resolve

    return resolve(path).func
