"""Generated over every write operation with a request body: a wrong value for any field is a 400
that names the field, and nothing is stored (row counts of the API's tables and the audit log)."""
from __future__ import annotations

import pytest
from django.apps import apps

from tests.apps.api.conftest import PUBLIC_OPERATIONS, concrete, schema_operations

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


def _counts() -> dict[str, int]:
    labels = ("market", "predictions", "accounts")
    return {m._meta.label: m.objects.count() for m in apps.get_models() if m._meta.app_label in labels}


def test_there_are_write_operations_with_bodies_to_check():
    assert {(p, m) for p, m, _, _ in CASES} >= {("/api/v1/instruments/", "post"), ("/api/v1/instruments/{id}/", "patch")}


@pytest.mark.parametrize(("path", "method", "field", "spec"), CASES, ids=[f"{m} {p} {f}" for p, m, f, _ in CASES])
def test_a_wrong_value_is_a_400_naming_the_field_and_stores_nothing(as_admin, eth, path, method, field, spec):
    before = _counts()
    response = getattr(as_admin, method)(concrete(path, {"id": eth.pk}), {field: _wrong(spec)}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert _counts() == before
