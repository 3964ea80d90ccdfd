"""Generated over every operation of the OpenAPI schema (and every route of the resolver): who may call what."""
from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.permissions import SAFE_METHODS

from apps.accounts.permissions import IsAdminOrReadOnly, IsAdminRole, IsTraderOrReadOnly
from apps.market.models import CobFrame, DataGap
from apps.predictions.models import ModelCheckpoint, Prediction
from tests.apps.api.conftest import PUBLIC_OPERATIONS, concrete, schema_operations

pytestmark = pytest.mark.django_db

OPERATIONS = schema_operations()
PROTECTED = [(p, m) for p, m, _ in OPERATIONS if (p, m) not in PUBLIC_OPERATIONS]
WRITES = [(p, m) for p, m in PROTECTED if m.upper() not in SAFE_METHODS]


def _ids(eth) -> dict[str, int]:
    return {"id": 1, "instrument": eth.pk}


def _path_ids(path: str, eth) -> dict[str, int]:
    """An existing row's id for the path's ``{id}`` (so a 403/404 is about permission, not absence)."""
    rows = {"/instruments/": eth.pk, "/cob-frames/": CobFrame.objects.values_list("pk", flat=True).first(),
            "/data-gaps/": DataGap.objects.values_list("pk", flat=True).first(),
            "/predictions/": Prediction.objects.values_list("pk", flat=True).first(),
            "/checkpoints/": ModelCheckpoint.objects.values_list("pk", flat=True).first()}
    ids = _ids(eth)
    for prefix, pk in rows.items():
        if prefix in path and pk:
            ids["id"] = pk
    return ids


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
def test_an_anonymous_request_is_refused_with_401(client, path, method, eth, market_rows):
    response = getattr(client, method)(concrete(path, _path_ids(path, eth)), content_type="application/json")
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == 'Token'


@pytest.mark.parametrize(("path", "method"), PUBLIC_OPERATIONS, ids=[f"{m} {p}" for p, m in PUBLIC_OPERATIONS])
def test_public_operations_answer_anonymous_requests(client, path, method):
    response = getattr(client, method)(path, content_type="application/json")
    assert response.status_code in (200, 400, 503), response.content  # token: 400 without credentials


@pytest.mark.parametrize(("path", "method"), WRITES, ids=[f"{m} {p}" for p, m in WRITES])
def test_a_viewer_may_not_write_anything(as_viewer, path, method, eth, market_rows):
    response = getattr(as_viewer, method)(concrete(path, _path_ids(path, eth)), {}, format="json")
    assert response.status_code == 403, response.content


@pytest.mark.parametrize(("path", "method"), WRITES, ids=[f"{m} {p}" for p, m in WRITES])
def test_a_trader_writes_only_where_traders_may(as_trader, path, method, eth, market_rows):
    view = _view_of(concrete(path, _path_ids(path, eth)))
    permissions = set(getattr(view.cls, "permission_classes", []))
    response = getattr(as_trader, method)(concrete(path, _path_ids(path, eth)), {}, format="json")
    if permissions & {IsAdminOrReadOnly, IsAdminRole}:
        assert response.status_code == 403, response.content
    else:
        assert IsTraderOrReadOnly in permissions
        assert response.status_code != 403, response.content


@pytest.mark.parametrize(("path", "method"), [(p, m) for p, m in PROTECTED if m == "get"],
                         ids=[f"get {p}" for p, m in PROTECTED if m == "get"])
def test_every_role_reads_every_list_and_detail(as_viewer, path, method, eth, market_rows):
    response = as_viewer.get(concrete(path, _path_ids(path, eth)))
    assert response.status_code in (200, 404), response.content  # 404: the heatmap without enough frames
    if path.endswith("/heatmap/"):
        assert response.status_code == 200


def test_the_schema_and_its_ui_are_served_without_a_cdn(client):
    assert client.get("/api/v1/schema/").status_code == 200
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower() and b"/static/drf_spectacular_sidecar/" in docs.content


def _view_of(path: str):
    from django.urls import resolve

    return resolve(path).func
