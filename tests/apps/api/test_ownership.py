"""A user never reads or changes another user's rows; admins see all. Generated over every
operation of the schema whose view filters by owner (``OwnedQuerysetMixin``): each user holds one
row of every kind (``owned_rows``) and asks for the other's with a valid request.

Annotations are the documented exception for reads (``read_all``: every role reads everyone's, as
the web UI shows them); their writes are owner-only like everything else."""
from __future__ import annotations

import re

import pytest
from django.urls import resolve

from apps.accounts.models import AuditLog
from apps.api.mixins import OwnedQuerysetMixin
from apps.risk.models import RiskState
from tests.apps.api.conftest import _client, _user_with_role, owned_rows, path_for, schema_operations, snapshot

pytestmark = pytest.mark.django_db


def _view(path: str):
    return resolve(re.sub(r"\{\w+\}", "1", path)).func.cls


OWNED = [(p, m) for p, m, _ in schema_operations() if issubclass(_view(p), OwnedQuerysetMixin)]
DETAIL = [(p, m) for p, m in OWNED if "{" in p]
LISTS = [(p, m) for p, m in OWNED if "{" not in p and m == "get"]

# A valid body per write operation, so that only ownership can refuse it.
BODIES = {
    "/api/v1/accounts/{id}/credentials/": {"api_key": "AKIA-test", "api_secret": "very-secret"},
    "/api/v1/risk-limits/{id}/": {"max_position": "2.5", "max_order_notional": "4000", "max_orders_per_minute": 5,
                                  "daily_loss_limit": "300", "max_drawdown": 0.1, "sizing": "fixed_notional"},
    "/api/v1/annotations/{id}/": {"instrument": None, "side": "short", "entry_time": "2024-08-08T11:00:00Z",
                                  "entry_price": "2650", "exit_time": "2024-08-08T11:05:00Z", "exit_price": "2640",
                                  "notes": "changed"},
}


@pytest.fixture
def two_traders(eth, secrets_key):
    alice, bob = _user_with_role("trader"), _user_with_role("trader")
    return (alice, owned_rows(alice, eth)), (bob, owned_rows(bob, eth))


@pytest.fixture
def secrets_key(monkeypatch):
    from cryptography.fernet import Fernet

    monkeypatch.setenv("GOGO_SECRETS_KEY", Fernet.generate_key().decode())


def _body(path: str, method: str, eth) -> dict:
    if method == "get":
        return {}
    body = dict(BODIES.get(path, {}))
    if "instrument" in body:
        body["instrument"] = eth.pk
    return body


def test_every_owned_operation_is_covered_here():
    writes = {(p, m) for p, m in DETAIL if m != "get"}
    assert {p for p, _ in writes} <= set(BODIES), sorted({p for p, _ in writes} - set(BODIES))
    assert len(LISTS) >= 10 and len(DETAIL) >= 14


@pytest.mark.parametrize(("path", "method"), DETAIL, ids=[f"{m} {p}" for p, m in DETAIL])
def test_a_user_cannot_read_or_change_another_users_row(two_traders, eth, path, method):
    (alice, _), (_, bobs) = two_traders
    before, audited = snapshot(), AuditLog.objects.count()
    response = getattr(_client(alice), method)(path_for(path, bobs), _body(path, method, eth), format="json")
    if method == "get" and _view(path).read_all:
        assert response.status_code == 200, response.content
    else:
        assert response.status_code in (403, 404), response.content
    assert snapshot() == before and AuditLog.objects.count() == audited


@pytest.mark.parametrize(("path", "method"), [(p, m) for p, m in DETAIL if m != "get"],
                         ids=[f"{m} {p}" for p, m in DETAIL if m != "get"])
def test_the_same_request_on_the_users_own_row_succeeds(two_traders, eth, path, method):
    (alice, mine), _ = two_traders
    response = getattr(_client(alice), method)(path_for(path, mine), _body(path, method, eth), format="json")
    assert response.status_code in (200, 204), response.content


@pytest.mark.parametrize("path", [p for p, _ in LISTS], ids=[p for p, _ in LISTS])
def test_a_list_never_shows_another_users_rows(two_traders, eth, path):
    (alice, mine), (_, bobs) = two_traders
    collection = path.removeprefix("/api/v1/").strip("/")
    key = "account" if collection == "risk-states" else "id"
    seen = {row[key] for row in _client(alice).get(path, {"limit": 1000}).json()["results"]}
    if _view(path).read_all:
        assert {mine[collection], bobs[collection]} <= seen
    else:
        assert mine[collection] in seen and bobs[collection] not in seen


def test_an_admin_sees_every_users_rows(two_traders):
    (_, alices), (_, bobs) = two_traders
    seen = {r["id"] for r in _client(_user_with_role("admin")).get("/api/v1/orders/").json()["results"]}
    assert {alices["orders"], bobs["orders"]} <= seen


def test_the_kill_switch_of_another_users_account_answers_as_a_nonexistent_one_and_nothing_changes(two_traders):
    (alice, _), (_, bobs) = two_traders
    client = _client(alice)
    response = client.post("/api/v1/control/kill-switch/", {"account": bobs["accounts"], "on": True}, format="json")
    missing = client.post("/api/v1/control/kill-switch/", {"account": 10**9, "on": True}, format="json")
    assert response.status_code == missing.status_code == 400
    assert response.json()["account"] == [m.replace(str(10**9), str(bobs["accounts"])) for m in missing.json()["account"]]
    assert not RiskState.objects.get(account_id=bobs["accounts"]).kill_switch
    assert not AuditLog.objects.filter(action__startswith="kill_switch").exists()


def test_an_admin_sets_the_kill_switch_of_any_account(two_traders):
    (_, _), (_, bobs) = two_traders
    response = _client(_user_with_role("admin")).post("/api/v1/control/kill-switch/",
                                                       {"account": bobs["accounts"], "on": True}, format="json")
    assert response.status_code == 200 and RiskState.objects.get(account_id=bobs["accounts"]).kill_switch
