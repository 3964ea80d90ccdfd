"""Control actions: the one place where a user changes what the running system does.

The dashboard's control panel, the REST API and the admin call these functions; each checks the
user's role (apps.accounts.roles), applies the change through the owning app's service, and writes
one AuditLog row (user, time, action, target, payload). The engine re-reads what they change at its
next decision cycle (about one second later).

| action                | role    | takes effect                                                  |
|-----------------------|---------|---------------------------------------------------------------|
| ``stream.start|stop`` | admin   | the ingest worker starts/drops the stream within ~1 s          |
| ``trading.start|stop``| trader  | new entries on the instrument are held from the next decision |
| ``orchestrator.update``| trader | margin (bps), cooldown, filters, weights: next decision        |
| ``model.enable|disable``| trader| the model runs (or not) from the next inference                |
| ``kill_switch.on|off``| trader  | own accounts only (admins: any); new orders halt this cycle    |

Errors: ``ControlDenied`` (a PermissionError) when the role is too low or the account is not the
user's; ``ValueError`` for an unknown model or a disabled instrument asked to stream; Django's
``ValidationError`` (with per-field messages) for an out-of-range setting. Nothing is changed and
nothing is audited when an error is raised.
"""
from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.accounts.roles import ADMIN, TRADER, role_at_least, user_role
from apps.accounts.services import audit_record
from apps.market.models import Instrument, MarketStream
from apps.predictions.models import ModelSetting
from apps.risk.models import RiskState
from apps.trading.models import OrchestratorConfig, TradingAccount
from apps.trading.services import orchestrator_config_get, orchestrator_config_update


class ControlDenied(PermissionError):
    """The user may not perform this control action (role too low, or not their account)."""


def _require(user, role: str, action: str) -> None:
    if not role_at_least(user, role):
        raise ControlDenied(f"{action}: requires the {role} role (you are {user_role(user) or 'anonymous'})")


def _audit(**kwargs: Any) -> None:
    """``audit_record``, then, once the transaction commits, push the row to every open dashboard
    and control panel (``apps.dashboard.events.audit_publish``: the audit log updates live)."""
    from apps.dashboard.events import audit_publish

    entry = audit_record(**kwargs)
    transaction.on_commit(lambda: audit_publish(entry))


def control_stream(*, user, instrument: Instrument, on: bool, request=None) -> MarketStream:
    """Start or stop the instrument's live market stream (apps.market.streams.stream_request)."""
    from apps.market.streams import stream_request

    action = f"stream.{'start' if on else 'stop'}"
    _require(user, ADMIN, action)
    desired = MarketStream.Desired.RUNNING if on else MarketStream.Desired.STOPPED
    with transaction.atomic():
        stream = stream_request(instruments=[instrument], desired=desired)[0]
        _audit(user=user, action=action, target=instrument, payload={"symbol": instrument.symbol}, request=request)
    return stream


def control_trading(*, user, instrument: Instrument, on: bool, request=None) -> OrchestratorConfig:
    """Allow or hold new entries on the instrument (``OrchestratorConfig.trading_enabled``)."""
    action = f"trading.{'start' if on else 'stop'}"
    _require(user, TRADER, action)
    with transaction.atomic():
        config = orchestrator_config_update(config=orchestrator_config_get(instrument=instrument), trading_enabled=on)
        _audit(user=user, action=action, target=instrument, payload={"symbol": instrument.symbol}, request=request)
    return config


def control_orchestrator(*, user, instrument: Instrument, changes: dict[str, Any], request=None) -> OrchestratorConfig:
    """Change live orchestrator settings (``apps.trading.services.CONFIG_FIELDS``: the margin in bps
    in [MARGIN_BPS_MIN, MARGIN_BPS_MAX] of ``apps.trading.models``, cooldown in s, order notional in
    USD, filters, gating mode and manual weights).

    The audit payload holds each changed field's old and new value."""
    _require(user, TRADER, "orchestrator.update")
    with transaction.atomic():
        config = orchestrator_config_get(instrument=instrument)
        before = {name: getattr(config, name) for name in changes if hasattr(config, name)}
        config = orchestrator_config_update(config=config, **changes)
        diff = {name: {"from": before.get(name), "to": getattr(config, name)} for name in changes}
        _audit(user=user, action="orchestrator.update", target=instrument, payload=diff, request=request)
    return config


def control_model(*, user, model_name: str, on: bool, request=None) -> ModelSetting:
    """Enable or disable a model family (ml.models.specs.MODEL_NAMES) for inference and decisions."""
    from ml.models.specs import MODEL_NAMES

    action = f"model.{'enable' if on else 'disable'}"
    _require(user, TRADER, action)
    if model_name not in MODEL_NAMES:
        raise ValueError(f"model_name: unknown model {model_name!r}; one of {', '.join(MODEL_NAMES)}")
    with transaction.atomic():
        setting, _ = ModelSetting.objects.update_or_create(model_name=model_name, defaults={"enabled": on})
        _audit(user=user, action=action, target=setting, payload={"model_name": model_name}, request=request)
    return setting


def control_kill_switch(*, user, account: TradingAccount, on: bool, request=None) -> RiskState:
    """Set the kill switch of one trading account: the user's own, or any for an admin."""
    from apps.risk.services import risk_kill_switch_set

    action = f"kill_switch.{'on' if on else 'off'}"
    _require(user, TRADER, action)
    if account.owner_id != user.pk and user_role(user) != ADMIN:
        raise ControlDenied(f"{action}: account {account.pk} is not yours")
    with transaction.atomic():
        state = risk_kill_switch_set(account=account, on=on, by=user.get_username())
        _audit(user=user, action=action, target=account, payload={"account": account.name}, request=request)
    return state
