"""Control actions: roles, ownership, audit rows, and nothing changed on a refusal."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from apps.accounts.models import AuditLog
from apps.accounts.roles import role_ensure_defaults
from apps.market.models import MarketStream
from apps.predictions.models import ModelSetting
from apps.predictions.selectors import model_names_enabled
from apps.trading import controls
from apps.trading.services import account_ensure_paper, orchestrator_config_get


def _user(name: str, role: str | None):
    role_ensure_defaults()
    user = get_user_model().objects.create_user(name)
    if role == "admin":
        user.is_staff = True
        user.save()
    elif role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def viewer(db):
    return _user("vera", None)


@pytest.fixture
def trader(db):
    return _user("tom", "trader")


@pytest.fixture
def admin(db):
    return _user("ada", "admin")


def test_viewer_cannot_act_and_nothing_changes(viewer, eth):
    account = account_ensure_paper(owner=viewer)
    with pytest.raises(controls.ControlDenied, match="requires the trader role"):
        controls.control_orchestrator(user=viewer, instrument=eth, changes={"margin_bps": 9.0})
    with pytest.raises(controls.ControlDenied):
        controls.control_kill_switch(user=viewer, account=account, on=True)
    with pytest.raises(controls.ControlDenied):
        controls.control_model(user=viewer, model_name="cnn", on=False)
    assert orchestrator_config_get(instrument=eth).margin_bps == 2.0
    assert not AuditLog.objects.exists()


def test_the_margin_changes_and_is_audited_with_old_and_new(trader, eth):
    before = orchestrator_config_get(instrument=eth).margin_bps
    config = controls.control_orchestrator(user=trader, instrument=eth, changes={"margin_bps": 3.5})
    assert (before, config.margin_bps) == (2.0, 3.5)
    entry = AuditLog.objects.get(action="orchestrator.update")
    assert entry.username == "tom" and entry.target_id == str(eth.pk)
    assert entry.payload == {"margin_bps": {"from": 2.0, "to": 3.5}}


@pytest.mark.parametrize("margin", [50.5, -10.5])
def test_an_out_of_range_margin_is_refused_and_not_audited(trader, eth, margin):
    with pytest.raises(ValidationError) as caught:
        controls.control_orchestrator(user=trader, instrument=eth, changes={"margin_bps": margin})
    assert "margin_bps" in caught.value.message_dict
    assert orchestrator_config_get(instrument=eth).margin_bps == 2.0
    assert not AuditLog.objects.exists()


def test_the_old_probability_thresholds_are_no_setting_any_more(trader, eth):
    with pytest.raises(ValueError, match="not a live orchestrator setting: buy_threshold"):
        controls.control_orchestrator(user=trader, instrument=eth, changes={"buy_threshold": 0.34})


def test_trading_stop_holds_entries_flag(trader, eth):
    assert controls.control_trading(user=trader, instrument=eth, on=False).trading_enabled is False
    assert orchestrator_config_get(instrument=eth).trading_enabled is False
    controls.control_trading(user=trader, instrument=eth, on=True)
    assert list(AuditLog.objects.order_by("pk").values_list("action", flat=True)) == ["trading.stop", "trading.start"]


def test_model_disable_removes_it_from_inference(trader):
    controls.control_model(user=trader, model_name="dqn", on=False)
    assert "dqn" not in model_names_enabled()
    controls.control_model(user=trader, model_name="dqn", on=True)
    assert "dqn" in model_names_enabled()
    with pytest.raises(ValueError, match="unknown model"):
        controls.control_model(user=trader, model_name="gpt", on=True)
    assert not ModelSetting.objects.filter(model_name="gpt").exists()


def test_kill_switch_only_on_own_accounts_unless_admin(trader, admin):
    other = account_ensure_paper(owner=_user("otto", "trader"))
    with pytest.raises(controls.ControlDenied, match="not yours"):
        controls.control_kill_switch(user=trader, account=other, on=True)
    assert controls.control_kill_switch(user=admin, account=other, on=True).kill_switch is True
    own = account_ensure_paper(owner=trader)
    assert controls.control_kill_switch(user=trader, account=own, on=True).kill_switch is True
    assert AuditLog.objects.filter(action="kill_switch.on").count() == 2


def test_streams_are_admin_only(trader, admin, eth):
    with pytest.raises(controls.ControlDenied):
        controls.control_stream(user=trader, instrument=eth, on=False)
    stream = controls.control_stream(user=admin, instrument=eth, on=False)
    assert stream.desired == MarketStream.Desired.STOPPED
    assert AuditLog.objects.filter(action="stream.stop", username="ada").count() == 1


@pytest.mark.parametrize("weights", [{"gpt": 1}, {"cnn": -1}, {"cnn": "a lot"}, {"cnn": float("nan")}, ["cnn"]])
def test_manual_weights_must_name_known_models_with_non_negative_weights(trader, eth, weights):
    with pytest.raises(ValidationError) as caught:
        controls.control_orchestrator(user=trader, instrument=eth, changes={"manual_weights": weights})
    assert "manual_weights" in caught.value.message_dict
    assert orchestrator_config_get(instrument=eth).manual_weights == {}
    controls.control_orchestrator(user=trader, instrument=eth, changes={"manual_weights": {"cnn": 2, "dqn": 0.5}})
    assert orchestrator_config_get(instrument=eth).manual_weights == {"cnn": 2, "dqn": 0.5}
