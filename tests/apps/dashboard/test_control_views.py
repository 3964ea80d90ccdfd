"""The control panel page and its JSON endpoints (apps.dashboard.control_views)."""
from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from apps.accounts.models import AuditLog
from apps.accounts.roles import role_ensure_defaults
from apps.market.models import Instrument, MarketStream
from apps.predictions.models import ModelSetting
from apps.risk.models import RiskState
from apps.trading.services import account_ensure_paper, orchestrator_config_get

pytestmark = pytest.mark.django_db


def _signed_in(client, name: str, role: str | None):
    role_ensure_defaults()
    user = get_user_model().objects.create_user(name, is_staff=role == "admin")
    if role == "trader":
        user.groups.add(Group.objects.get(name="trader"))
    client.force_login(user)
    return user


def _post(client, url: str, body) -> tuple[int, dict]:
    response = client.post(url, json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


@pytest.fixture
def eth() -> Instrument:
    return Instrument.objects.get(venue="binance", symbol="ETHUSDT")


def test_a_viewer_sees_the_panel_read_only(client, eth):
    user = _signed_in(client, "vera", None)
    account = account_ensure_paper(owner=user)

    page = client.get("/control/").content.decode()

    assert 'id="readonly-note"' in page and "viewer" in page
    assert f'data-account="{account.pk}"' in page
    # every control of the page is disabled for a viewer
    buttons = page.count('data-control="')
    assert buttons >= 4 and page.count("disabled title=") == buttons
    sliders = re.findall(r'<input type="range"[^>]*>', page)
    assert sliders and all(" disabled" in s for s in sliders)
    assert re.search(r'min="-10.0" max="50.0" step="0.5" name="margin_bps"\s+value="2.0"', page)


def test_the_server_refuses_every_action_to_a_viewer(client, eth):
    user = _signed_in(client, "vera", None)
    account = account_ensure_paper(owner=user)

    refused = [
        _post(client, "/control/kill-switch/", {"account": account.pk, "on": True}),
        _post(client, "/control/thresholds/", {"instrument": eth.pk, "margin_bps": 9.0}),
        _post(client, "/control/trading/", {"instrument": eth.pk, "on": False}),
        _post(client, "/control/model/", {"model": "cnn", "on": False}),
        _post(client, "/control/stream/", {"instrument": eth.pk, "on": True}),
    ]

    assert [status for status, _ in refused] == [403] * 5
    assert "requires the trader role" in refused[0][1]["error"]
    assert not RiskState.objects.filter(account=account, kill_switch=True).exists()
    assert orchestrator_config_get(instrument=eth).margin_bps == 2.0
    assert AuditLog.objects.count() == 0


def test_a_trader_moves_the_margin_and_the_change_is_audited(client, eth):
    trader = _signed_in(client, "tom", "trader")

    status, body = _post(client, "/control/thresholds/", {"instrument": eth.pk, "margin_bps": 4.5})

    assert status == 200
    assert body == {"instrument": eth.pk, "margin_bps": 4.5}
    entry = AuditLog.objects.get(action="orchestrator.update")
    assert entry.user == trader and entry.payload == {"margin_bps": {"from": 2.0, "to": 4.5}}


@pytest.mark.parametrize(("body", "field"), [
    ({"margin_bps": 50.5}, "margin_bps"),
    ({"margin_bps": "high"}, "margin_bps"),
    ({"margin_bps": "nan"}, "margin_bps"),
    ({}, "margin_bps"),
])
def test_a_bad_margin_is_refused_naming_the_field(client, eth, body, field):
    _signed_in(client, "tom", "trader")

    status, answer = _post(client, "/control/thresholds/", {"instrument": eth.pk, **body})

    assert status == 400 and answer["error"].startswith(field)


def test_a_trader_stops_trading_and_disables_a_model_but_may_not_stop_ingestion(client, eth):
    _signed_in(client, "tom", "trader")

    assert _post(client, "/control/trading/", {"instrument": eth.pk, "on": False}) == \
        (200, {"instrument": eth.pk, "trading_enabled": False})
    assert _post(client, "/control/model/", {"model": "dqn", "on": False}) == (200, {"model": "dqn", "enabled": False})
    status, _ = _post(client, "/control/stream/", {"instrument": eth.pk, "on": True})

    assert status == 403
    assert not orchestrator_config_get(instrument=eth).trading_enabled
    assert not ModelSetting.objects.get(model_name="dqn").enabled


def test_an_admin_starts_ingestion(client, eth):
    _signed_in(client, "ada", "admin")

    status, body = _post(client, "/control/stream/", {"instrument": eth.pk, "on": True})

    assert status == 200 and body["desired"] == "running"
    assert MarketStream.objects.get(instrument=eth).desired == "running"


def test_a_trader_sets_only_their_own_kill_switch(client):
    trader = _signed_in(client, "tom", "trader")
    mine = account_ensure_paper(owner=trader)
    other = account_ensure_paper(owner=get_user_model().objects.create_user("bob"))

    assert _post(client, "/control/kill-switch/", {"account": mine.pk, "on": True}) == \
        (200, {"account": mine.pk, "kill_switch": True})
    status, _ = _post(client, "/control/kill-switch/", {"account": other.pk, "on": True})

    assert status == 403
    assert RiskState.objects.get(account=mine).kill_switch
    assert not RiskState.objects.filter(account=other, kill_switch=True).exists()


@pytest.mark.parametrize(("url", "body", "status", "field"), [
    ("/control/kill-switch/", {"account": 999999, "on": True}, 404, "account"),
    ("/control/kill-switch/", {"account": "x", "on": True}, 400, "account"),
    ("/control/trading/", {"instrument": 999999, "on": True}, 404, "instrument"),
    ("/control/trading/", {"instrument": None, "on": "yes"}, 400, "instrument"),
    ("/control/model/", {"model": "gpt", "on": True}, 400, "model_name"),
])
def test_a_bad_request_names_the_field(client, eth, url, body, status, field):
    _signed_in(client, "tom", "trader")

    answer_status, answer = _post(client, url, body)

    assert answer_status == status and answer["error"].startswith(field)


def test_the_panel_lists_recent_audit_entries_without_other_users_accounts(client, eth):
    trader = _signed_in(client, "tom", "trader")
    other = account_ensure_paper(owner=get_user_model().objects.create_user("bob"))
    AuditLog.objects.create(username="bob", action="kill_switch.on", target_type="trading.tradingaccount",
                            target_id=str(other.pk), payload={"account": "bob-secret-account"})
    _post(client, "/control/trading/", {"instrument": eth.pk, "on": False})

    page = client.get("/control/").content.decode()

    assert "trading.stop" in page and trader.username in page
    assert "bob-secret-account" not in page
