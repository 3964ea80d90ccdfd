"""The control panel (/control/): one page, and one JSON endpoint per control action.

Every action goes through ``apps.trading.controls`` (role check, change, AuditLog row, live push of
the row to open panels). Endpoints take a JSON body and answer JSON: 200 with the new state, 400
naming the bad field, 403 when the user's role is too low (``ControlDenied``), 404 for an unknown
instrument or account.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from apps.dashboard.selectors import control_panel
from apps.trading import controls

logger = logging.getLogger(__name__)


class _NotFound(LookupError):
    pass


@login_required
@require_GET
def control_page(request: HttpRequest) -> HttpResponse:
    """The control panel; a viewer sees it read-only (controls disabled, with the reason)."""
    return render(request, "dashboard/control.html", {"panel": control_panel(user=request.user)})


def _action(view: Callable[[HttpRequest, dict], dict]) -> Callable[[HttpRequest], JsonResponse]:
    """Parse the JSON body, run the action, map the service's errors to HTTP statuses."""

    @login_required
    @require_POST
    @wraps(view)
    def wrapper(request: HttpRequest) -> JsonResponse:
        try:
            body = json.loads(request.body or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body: expected a JSON object")
            return JsonResponse(view(request, body))
        except controls.ControlDenied as exc:
            return JsonResponse({"error": str(exc)}, status=403)
        except _NotFound as exc:
            return JsonResponse({"error": str(exc)}, status=404)
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
            return JsonResponse({"error": "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()),
                                 "errors": errors}, status=400)
        except (ValueError, TypeError) as exc:
            return JsonResponse({"error": str(exc)}, status=400)

    return wrapper


def _instrument(body: dict):
    from apps.market.models import Instrument

    try:
        pk = int(body.get("instrument"))
    except (TypeError, ValueError):
        raise ValueError(f"instrument: expected an instrument id, got {body.get('instrument')!r}") from None
    instrument = Instrument.objects.filter(pk=pk).first()
    if instrument is None:
        raise _NotFound(f"instrument: no instrument {pk}")
    return instrument


def _on(body: dict) -> bool:
    value = body.get("on")
    if not isinstance(value, bool):
        raise ValueError(f"on: expected true or false, got {value!r}")
    return value


def _margin(body: dict) -> float:
    from apps.trading.models import MARGIN_BPS_MAX, MARGIN_BPS_MIN

    bounds = f"[{MARGIN_BPS_MIN:g}, {MARGIN_BPS_MAX:g}] bps"
    try:
        value = float(body["margin_bps"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"margin_bps: expected a number in {bounds}, got {body.get('margin_bps')!r}") from None
    if not MARGIN_BPS_MIN <= value <= MARGIN_BPS_MAX:  # also refuses NaN
        raise ValueError(f"margin_bps: must be in {bounds}, got {value}")
    return value


@_action
def stream(request: HttpRequest, body: dict) -> dict:
    """{"instrument": id, "on": bool}: start / stop the instrument's market stream (admin)."""
    row = controls.control_stream(user=request.user, instrument=_instrument(body), on=_on(body), request=request)
    return {"instrument": row.instrument_id, "desired": row.desired, "status": row.status}


@_action
def trading(request: HttpRequest, body: dict) -> dict:
    """{"instrument": id, "on": bool}: allow / hold new entries on the instrument (trader)."""
    config = controls.control_trading(user=request.user, instrument=_instrument(body), on=_on(body), request=request)
    return {"instrument": config.instrument_id, "trading_enabled": config.trading_enabled}


@_action
def thresholds(request: HttpRequest, body: dict) -> dict:
    """{"instrument": id, "margin_bps": number in [MARGIN_BPS_MIN, MARGIN_BPS_MAX]}: the margin the
    mixture's expected net edge must exceed to act, used from the engine's next decision (trader)."""
    changes = {"margin_bps": _margin(body)}
    config = controls.control_orchestrator(user=request.user, instrument=_instrument(body), changes=changes,
                                           request=request)
    return {"instrument": config.instrument_id, "margin_bps": config.margin_bps}


@_action
def model(request: HttpRequest, body: dict) -> dict:
    """{"model": name, "on": bool}: enable / disable a model family (trader)."""
    setting = controls.control_model(user=request.user, model_name=str(body.get("model", "")), on=_on(body),
                                     request=request)
    return {"model": setting.model_name, "enabled": setting.enabled}


@_action
def kill_switch(request: HttpRequest, body: dict) -> dict:
    """{"account": id, "on": bool}: the kill switch of one of the user's accounts (admin: any) (trader)."""
    from apps.trading.models import TradingAccount

    try:
        pk = int(body.get("account"))
    except (TypeError, ValueError):
        raise ValueError(f"account: expected an account id, got {body.get('account')!r}") from None
    account = TradingAccount.objects.filter(pk=pk).first()
    if account is None:
        raise _NotFound(f"account: no account {pk}")
    state = controls.control_kill_switch(user=request.user, account=account, on=_on(body), request=request)
    return {"account": account.pk, "kill_switch": state.kill_switch}
