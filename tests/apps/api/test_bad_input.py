"""Generated over every write operation with a request body: a wrong value for any field is a 400
that names the field, and nothing is stored (row counts of the API's tables and the audit log)."""
from __future__ import annotations

import pytest

from tests.apps.api.conftest import PUBLIC_OPERATIONS, owned_rows, path_for, row_ids, schema_operations, snapshot

pytestmark = pytest.mark.django_db


def _request_schema(operation: dict, components: dict) -> dict:
    content = operation.get("requestBody", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref")
    return components[ref.rsplit("/", 1)[-1]] if ref else {}


def _wrong(spec: dict):
    """A value the field must refuse, from its schema."""
    if "enum" in spec or "allOf" in spec or "oneOf" in spec:
        return "not-one-of-the-choices"
    kind = spec.get("type")
    if kind in ("integer", "number"):
        return "not-a-number"
    if kind == "boolean":
        return "maybe"
    if spec.get("format") == "decimal" or "pattern" in spec:
        return "not-a-decimal"
    if spec.get("format") == "date-time":
        return "yesterday"
    if "maxLength" in spec:
        return "x" * (spec["maxLength"] + 1)
    return None  # a non-nullable string


def _cases():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    cases = []
    for path, method, operation in schema_operations():
        if method not in ("post", "put", "patch") or (path, method) in PUBLIC_OPERATIONS:
            continue
        for field, spec in _request_schema(operation, components).get("properties", {}).items():
            if not spec.get("readOnly"):
                cases.append((path, method, field, spec))
    return cases


CASES = _cases()


def test_there_are_write_operations_with_bodies_to_check():
    assert {(p, m) for p, m, _, _ in CASES} >= {
        ("/api/v1/instruments/", "post"), ("/api/v1/instruments/{id}/", "patch"), ("/api/v1/annotations/", "post"),
        ("/api/v1/annotations/{id}/", "put"), ("/api/v1/risk-limits/{id}/", "patch"), ("/api/v1/backtests/", "post"),
        ("/api/v1/accounts/{id}/credentials/", "post"), ("/api/v1/control/orchestrator/", "post"),
        ("/api/v1/control/kill-switch/", "post"), ("/api/v1/control/models/", "post"),
        ("/api/v1/control/trading/", "post"), ("/api/v1/control/streams/", "post")}


@pytest.mark.parametrize(("path", "method", "field", "spec"), CASES, ids=[f"{m} {p} {f}" for p, m, f, _ in CASES])
def test_a_wrong_value_is_a_400_naming_the_field_and_stores_nothing(as_admin, admin, eth, path, method, field, spec):
    target = path_for(path, row_ids(eth, owned_rows(admin, eth)))
    before = snapshot()
    response = getattr(as_admin, method)(target, {field: _wrong(spec)}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert snapshot() == before
