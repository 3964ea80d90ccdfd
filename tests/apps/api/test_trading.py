"""Trading and risk endpoints: accounts (credentials write-only), orders, fills, positions, risk
limits (validated, audited updates), risk state and events."""
from __future__ import annotations

from decimal import Decimal

import pytest
from cryptography.fernet import Fernet

from apps.accounts.models import AuditLog
from apps.risk.models import RiskLimit
from apps.trading.models import Order, TradingAccount
from apps.trading.secrets import secret_decrypt
from apps.trading.services import OrderIntent, order_create
from tests.apps.api.conftest import owned_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def mine(trader, eth):
    return owned_rows(trader, eth)


@pytest.fixture
def secrets_key(monkeypatch):
    monkeypatch.setenv("GOGO_SECRETS_KEY", Fernet.generate_key().decode())


def test_accounts_list_the_users_own_without_credentials(as_trader, mine):
    rows = as_trader.get("/api/v1/accounts/").json()["results"]
    assert [r["id"] for r in rows] == [mine["accounts"]]
    assert rows[0]["has_credentials"] is False
    assert not {"api_key", "api_secret", "api_key_encrypted", "api_secret_encrypted"} & set(rows[0])


def test_credentials_are_stored_encrypted_and_never_returned(as_trader, trader, mine, secrets_key):
    response = as_trader.post(f"/api/v1/accounts/{mine['accounts']}/credentials/",
                              {"api_key": "AKIA-plain-key", "api_secret": "plain-secret-value"}, format="json")
    assert response.status_code == 200 and response.json()["has_credentials"] is True
    account = TradingAccount.objects.get(pk=mine["accounts"])
    assert secret_decrypt(account.api_secret_encrypted) == "plain-secret-value"
    for leaked in ("AKIA-plain-key", "plain-secret-value", account.api_secret_encrypted, account.api_key_encrypted):
        assert leaked.encode() not in response.content
    entry = AuditLog.objects.get(action="account.credentials")
    assert entry.user == trader and entry.payload == {"stored": True}


def test_credentials_need_both_parts_and_a_server_key(as_trader, mine, monkeypatch):
    url = f"/api/v1/accounts/{mine['accounts']}/credentials/"
    response = as_trader.post(url, {"api_key": "only-the-key", "api_secret": ""}, format="json")
    assert response.status_code == 400 and "api_secret" in response.json()
    monkeypatch.delenv("GOGO_SECRETS_KEY", raising=False)
    response = as_trader.post(url, {"api_key": "k", "api_secret": "s"}, format="json")
    assert response.status_code == 503 and "GOGO_SECRETS_KEY" in response.json()["detail"]
    assert not TradingAccount.objects.get(pk=mine["accounts"]).has_credentials
    assert not AuditLog.objects.filter(action="account.credentials").exists()


def test_orders_are_filtered_and_paged_newest_first(as_trader, trader, eth, mine):
    account = TradingAccount.objects.get(pk=mine["accounts"])
    for i in range(3):
        order_create(intent=OrderIntent(account=account, instrument=eth, side="SELL", notional=Decimal(100),
                                        ts_event_ms=1_723_111_200_000 + (i + 1) * 1000, purpose="exit"),
                     quantity=Decimal("0.01"))
    page = as_trader.get("/api/v1/orders/", {"side": "SELL", "limit": 2}).json()
    assert [r["side"] for r in page["results"]] == ["SELL", "SELL"] and page["next"]
    assert page["results"][0]["ts_event"] > page["results"][1]["ts_event"]
    rest = as_trader.get(page["next"]).json()["results"]
    assert len(rest) == 1 and rest[0]["purpose"] == "exit"
    assert [r["id"] for r in as_trader.get("/api/v1/orders/", {"open": "true", "side": "BUY"}).json()["results"]] == \
        [mine["orders"]]
    assert as_trader.get("/api/v1/orders/", {"status": "NOPE"}).status_code == 400


def test_fills_positions_events_and_risk_rows_of_the_account(as_trader, mine):
    fill = as_trader.get("/api/v1/fills/", {"account": mine["accounts"]}).json()["results"][0]
    assert (fill["side"], fill["price"], fill["fee"]) == ("BUY", "2600.00000000", "0.26000000")
    assert as_trader.get(f"/api/v1/positions/{mine['positions']}/").json()["quantity"] == "0.10000000"
    assert as_trader.get("/api/v1/order-events/", {"order": mine["orders"]}).json()["results"][0]["status"] == "NEW"
    state = as_trader.get(f"/api/v1/risk-states/{mine['accounts']}/").json()
    assert (state["state"], state["kill_switch"], state["equity"]) == ("ACTIVE", False, "10000.00000000")
    assert as_trader.get("/api/v1/risk-events/", {"kind": "rejected"}).json()["results"][0]["rule"] == "max_position"


def test_a_trader_changes_their_risk_limit_within_range_and_it_is_audited(as_trader, mine):
    url = f"/api/v1/risk-limits/{mine['risk-limits']}/"
    response = as_trader.patch(url, {"max_drawdown": 0.15, "stop_loss": 0.01}, format="json")
    assert response.status_code == 200 and response.json()["max_drawdown"] == 0.15
    entry = AuditLog.objects.get(action="risk_limit.update")
    assert entry.payload == {"max_drawdown": {"from": 0.2, "to": 0.15}, "stop_loss": {"from": None, "to": 0.01}}
    for field, value in (("max_drawdown", 1.5), ("stop_loss", -0.1), ("max_position", "0"), ("sizing", "yolo")):
        refused = as_trader.patch(url, {field: value}, format="json")
        assert refused.status_code == 400 and field in refused.json()
    limit = RiskLimit.objects.get(pk=mine["risk-limits"])
    assert (limit.max_drawdown, limit.stop_loss, limit.max_position) == (0.15, 0.01, Decimal("1"))


def test_orders_are_read_only(as_trader, mine):
    url = f"/api/v1/orders/{mine['orders']}/"
    assert as_trader.delete(url).status_code in (403, 405)  # 403: the default permission refuses writes first
    assert as_trader.patch(url, {"status": "CANCELED"}, format="json").status_code in (403, 405)
    assert Order.objects.get(pk=mine["orders"]).status == "NEW"


def test_every_order_created_is_audited_with_its_owner_as_actor(trader, eth, mine):
    account = TradingAccount.objects.get(pk=mine["accounts"])
    intent = OrderIntent(account=account, instrument=eth, side="BUY", notional=Decimal(100), ts_event_ms=1_723_111_260_000,
                         quantity=Decimal("0.02"), order_type="LIMIT", price=Decimal("2601.5"))
    order, created = order_create(intent=intent, quantity=Decimal("0.02"))
    again, created_again = order_create(intent=intent, quantity=Decimal("0.02"))
    assert created and not created_again and again.pk == order.pk
    entry = AuditLog.objects.get(action="order.submit")  # one row: the retried submit made none
    assert (entry.user, entry.target_type, entry.target_id) == (trader, "trading.order", str(order.pk))
    assert entry.payload == {"side": "BUY", "type": "LIMIT", "quantity": "0.02", "price": "2601.5", "purpose": "entry",
                             "client_order_id": order.client_order_id}
