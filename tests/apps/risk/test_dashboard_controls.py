"""The dashboard's risk card: live orchestrator settings, kill switch, recent rejections."""
from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse

from apps.market.models import Instrument
from apps.risk.models import RiskEvent, RiskState
from apps.trading.models import OrchestratorConfig
from apps.trading.services import account_ensure_paper

pytestmark = pytest.mark.django_db


@pytest.fixture
def trader(client):
    user = get_user_model().objects.create_user("trader", password="a-long-test-password")
    user.groups.add(Group.objects.get_or_create(name="trader")[0])
    client.force_login(user)
    return user


def _form(**changes) -> dict:
    config = OrchestratorConfig.objects.get_or_create(instrument=Instrument.objects.get(symbol="ETHUSDT", venue="binance"))[0]
    data = {"margin_bps": config.margin_bps, "cooldown_seconds": config.cooldown_seconds, "order_notional": config.order_notional,
            "max_spread_bps": config.max_spread_bps or "", "max_volatility": config.max_volatility or "",
            "min_completeness": config.min_completeness or "", "gating_mode": config.gating_mode,
            "manual_weights": json.dumps(config.manual_weights)}
    return {**data, **changes}


def test_a_trader_changes_the_margin_and_weights_live(client, trader):
    response = client.post(reverse("risk-controls"), _form(margin_bps="3.5", gating_mode="manual",
                                                           manual_weights='{"cnn": 2, "dqn": 1}'))
    assert response.status_code == 200, response.content
    assert set(response.json()["changed"]) == {"margin_bps", "gating_mode", "manual_weights"}
    config = OrchestratorConfig.objects.get(instrument__symbol="ETHUSDT")
    assert (config.margin_bps, config.gating_mode, config.manual_weights) == (3.5, "manual", {"cnn": 2, "dqn": 1})


def test_a_margin_out_of_bounds_is_refused_with_the_field_named(client, trader):
    response = client.post(reverse("risk-controls"), _form(margin_bps="75"))
    assert response.status_code == 400 and "margin_bps" in response.json()["errors"]


def test_a_viewer_may_not_change_settings_or_the_kill_switch(client):
    viewer = get_user_model().objects.create_user("viewer")
    account = account_ensure_paper(owner=viewer)
    client.force_login(viewer)
    assert client.post(reverse("risk-controls"), _form()).status_code == 403
    assert client.post(reverse("kill-switch"), {"account": account.pk, "on": "1"}).status_code == 403


def test_the_kill_switch_is_stored_and_shown_with_the_recent_rejections(client, trader):
    account = account_ensure_paper(owner=trader)
    response = client.post(reverse("kill-switch"), {"account": account.pk, "on": "1"})
    assert response.json() == {"account": account.pk, "kill_switch": True}
    assert RiskState.objects.get(account=account).kill_switch
    panel = client.get(reverse("dashboard-risk")).json()
    row = panel["accounts"][0]
    assert row["kill_switch"] and row["events"][0]["kind"] == "kill_switch" and panel["can_trade"]
    page = client.get(reverse("dashboard")).content.decode()
    assert "KILL SWITCH ON" in page and "Release kill switch" in page
    assert RiskEvent.objects.filter(account=account, kind="kill_switch").count() == 1


def test_the_card_shows_equity_drawdown_var_and_sharpe_of_the_last_session(client, trader):
    from decimal import Decimal

    account = account_ensure_paper(owner=trader)
    RiskState.objects.create(account=account, state="REDUCING", reason="daily loss limit reached",
                             equity=Decimal("9500"), peak_equity=Decimal("10000"),
                             metrics={"var_historical": 0.000044, "var_parametric": 0.000045, "sharpe": 1.5,
                                      "sortino": 2.25, "max_drawdown": 0.05})
    page = client.get(reverse("dashboard")).content.decode()
    assert "REDUCING" in page and "daily loss limit reached" in page
    assert "9500.00 USD" in page and "0.0500" in page  # drawdown (10000 - 9500) / 10000
    assert "0.000044 / 0.000045" in page and "1.50 / 2.25" in page
