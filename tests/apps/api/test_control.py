"""Control actions over the API: each calls apps.trading.controls, writes one audit row, maps
ControlDenied to 403 and bad values to 400 naming the field (nothing changed, nothing audited)."""
from __future__ import annotations

import pytest

from apps.accounts.models import AuditLog
from apps.predictions.models import ModelSetting
from apps.risk.models import RiskState
from apps.trading.services import orchestrator_config_get
from tests.apps.api.conftest import owned_rows

pytestmark = pytest.mark.django_db


def test_a_trader_changes_the_margin_and_the_change_is_audited(as_trader, trader, eth):
    before = orchestrator_config_get(instrument=eth).margin_bps
    response = as_trader.post("/api/v1/control/orchestrator/", {"instrument": eth.pk, "margin_bps": 3.5,
                                                                 "cooldown_seconds": 10}, format="json")
    assert response.status_code == 200 and response.json()["margin_bps"] == 3.5
    entry = AuditLog.objects.get(action="orchestrator.update")
    assert entry.user == trader and entry.payload["margin_bps"] == {"from": before, "to": 3.5}


@pytest.mark.parametrize(("body", "field"), [({"margin_bps": 51}, "margin_bps"), ({"margin_bps": -11}, "margin_bps"),
                                             ({"gating_mode": "dice"}, "gating_mode"),
                                             ({}, "non_field_errors"),
                                             ({"instrument": 10**9, "margin_bps": 1.0}, "instrument")])
def test_a_bad_setting_is_a_400_naming_it_and_nothing_changes(as_trader, eth, body, field):
    config = orchestrator_config_get(instrument=eth)
    response = as_trader.post("/api/v1/control/orchestrator/", {"instrument": eth.pk, **body}, format="json")
    assert response.status_code == 400 and field in response.json()
    assert orchestrator_config_get(instrument=eth).updated_at == config.updated_at
    assert not AuditLog.objects.exists()


def test_trading_stop_and_start_are_audited(as_trader, eth):
    assert as_trader.post("/api/v1/control/trading/", {"instrument": eth.pk, "on": False}, format="json").json()[
        "trading_enabled"] is False
    assert as_trader.post("/api/v1/control/trading/", {"instrument": eth.pk, "on": True}, format="json").status_code == 200
    assert list(AuditLog.objects.order_by("pk").values_list("action", flat=True)) == ["trading.stop", "trading.start"]


def test_a_model_is_disabled_and_an_unknown_one_is_a_400(as_trader):
    response = as_trader.post("/api/v1/control/models/", {"model_name": "dqn", "on": False}, format="json")
    assert response.json() == {"model_name": "dqn", "enabled": False}
    assert not ModelSetting.objects.get(model_name="dqn").enabled
    unknown = as_trader.post("/api/v1/control/models/", {"model_name": "oracle", "on": True}, format="json")
    assert unknown.status_code == 400 and "unknown model" in unknown.json()["model_name"][0]
    assert list(AuditLog.objects.values_list("action", flat=True)) == ["model.disable"]


def test_the_kill_switch_halts_the_traders_own_account_and_is_audited(as_trader, trader, eth):
    account = owned_rows(trader, eth)["accounts"]
    response = as_trader.post("/api/v1/control/kill-switch/", {"account": account, "on": True}, format="json")
    assert response.status_code == 200 and response.json()["kill_switch"] is True
    assert RiskState.objects.get(account_id=account).kill_switch_by == trader.username
    entry = AuditLog.objects.get(action="kill_switch.on")
    assert (entry.user, entry.target_id) == (trader, str(account))


def test_streams_are_for_admins_and_a_disabled_instrument_is_a_400(as_trader, as_admin, eth):
    assert as_trader.post("/api/v1/control/streams/", {"instrument": eth.pk, "on": False}, format="json").status_code == 403
    stopped = as_admin.post("/api/v1/control/streams/", {"instrument": eth.pk, "on": False}, format="json")
    assert stopped.json() == {"instrument": eth.pk, "desired": "stopped", "status": stopped.json()["status"]}
    eth.enabled = False
    eth.save(update_fields=["enabled"])
    refused = as_admin.post("/api/v1/control/streams/", {"instrument": eth.pk, "on": True}, format="json")
    assert refused.status_code == 400 and "disabled" in refused.json()["instrument"][0]
    assert list(AuditLog.objects.values_list("action", flat=True)) == ["stream.stop"]


def test_viewers_may_not_act_and_nothing_is_audited(as_viewer, viewer, eth):
    account = owned_rows(viewer, eth)["accounts"]
    for path, body in (("trading", {"instrument": eth.pk, "on": False}), ("models", {"model_name": "cnn", "on": False}),
                       ("kill-switch", {"account": account, "on": True}),
                       ("orchestrator", {"instrument": eth.pk, "margin_bps": 9.0})):
        assert as_viewer.post(f"/api/v1/control/{path}/", body, format="json").status_code == 403
    assert not AuditLog.objects.exists() and not RiskState.objects.get(account_id=account).kill_switch


def test_the_audit_log_is_for_admins_and_filters_by_action_user_and_time(as_admin, as_trader, trader, eth):
    as_trader.post("/api/v1/control/trading/", {"instrument": eth.pk, "on": False}, format="json")
    as_trader.post("/api/v1/control/models/", {"model_name": "cnn", "on": False}, format="json")
    assert as_trader.get("/api/v1/audit/").status_code == 403
    rows = as_admin.get("/api/v1/audit/", {"user": trader.pk}).json()["results"]
    assert [r["action"] for r in rows] == ["model.disable", "trading.stop"]
    assert [r["action"] for r in as_admin.get("/api/v1/audit/", {"action_prefix": "trading."}).json()["results"]] == [
        "trading.stop"]
    assert as_admin.get("/api/v1/audit/", {"start": "2999-01-01T00:00:00Z"}).json()["results"] == []
    assert as_admin.get("/api/v1/audit/", {"start": "soon"}).status_code == 400
