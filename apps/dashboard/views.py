"""Dashboard pages. Thin: read through selectors, act through services."""
from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.roles import ADMIN, TRADER, role_at_least, user_role
from apps.accounts.services import audit_record
from apps.dashboard.selectors import TIMEFRAMES, checkpoint_ranking, dashboard_history, risk_limits
from apps.pipeline import control


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    from apps.market.streams import streams_payload
    from apps.risk.selectors import risk_panel as risk_panel_data

    risk = risk_panel_data(user=request.user)
    limits = risk_limits(user=request.user)
    for row in risk["accounts"]:
        row["limits"] = limits.get(row["id"])
    context = {"session": control.session_state(), "min_completeness": settings.GOGO_MIN_COMPLETENESS,
               "streams": streams_payload(), "risk": risk, "checkpoints": checkpoint_ranking(), "timeframes": TIMEFRAMES}
    return render(request, "dashboard/index.html", context)


@login_required
@require_GET
def history(request: HttpRequest) -> JsonResponse:
    """GET ?timeframe=1s|1m|1h|1d: ``apps.dashboard.selectors.dashboard_history`` of the user, plus
    the session and streams state; 400 naming a bad timeframe."""
    from apps.market.streams import streams_payload

    try:
        data = dashboard_history(user=request.user, timeframe=request.GET.get("timeframe", "1s"))
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    data["session"] = control.session_state()
    data["streams"] = streams_payload()
    return JsonResponse(data)


@login_required
@require_GET
def heatmap(request: HttpRequest) -> JsonResponse:
    """GET ?symbol=ETHUSDT&seconds=300&buckets=10: the COB heatmap matrix of the newest stored frames.

    Returns {symbol, bucket_width, ts (T,), price (B,) lower bucket edges, imbalance and volume
    (T x B, null where unknown), spread and mid (T,)}; 400 naming the bad parameter; 404 for an
    unknown instrument or no frames yet."""
    from apps.market.models import Instrument
    from apps.market.selectors import cob_frame_latest_events
    from ml.market.heatmap import heatmap_matrix

    try:
        seconds = _int_param(request, "seconds", 300, 1, 3600)
        buckets = _int_param(request, "buckets", 10, 0, 50)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    symbol = request.GET.get("symbol", "ETHUSDT").upper()
    instrument = Instrument.objects.filter(venue=Instrument.Venue.BINANCE, symbol=symbol).first()
    frames = cob_frame_latest_events(instrument=instrument, seconds=seconds) if instrument else []
    if not frames:
        return JsonResponse({"error": f"no COB frames for {symbol}"}, status=404)
    m = heatmap_matrix(frames, window_s=seconds, n_buckets=min(buckets, frames[-1].n_buckets))
    return JsonResponse({
        "symbol": m.symbol, "bucket_width": m.bucket_width, "ts": m.ts.tolist(), "price": m.price.tolist(),
        "imbalance": _nan_to_null(m.imbalance), "volume": _nan_to_null(m.volume),
        "spread": _nan_to_null(m.spread), "mid": _nan_to_null(m.mid),
    })


def _int_param(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = request.GET.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}: expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name}: must be between {low} and {high}, got {value}")
    return value


def _nan_to_null(array) -> list:
    import numpy as np

    return np.where(np.isnan(array), None, np.round(array, 6)).tolist()


@require_POST
async def session_control(request: HttpRequest) -> JsonResponse:
    """POST {"action": "start"|"stop"|"speed", "speed": "1"|"10"|"max"}: control the replay session.

    Runs on the server's event loop so that, embedded, the session task lives there too."""
    user = await request.auser()
    if not user.is_authenticated:
        return JsonResponse({"error": "login required"}, status=401)
    if not user.is_staff:
        return JsonResponse({"error": "only staff may control the session"}, status=403)
    try:
        body = json.loads(request.body or b"{}")
        action = body.get("action")
        speed = control.parse_speed(body.get("speed", "1"))
    except (ValueError, TypeError) as exc:
        return JsonResponse({"error": f"bad request: {exc}"}, status=400)
    if action == "start":
        from apps.pipeline.services import session_start

        started = session_start(speed=speed)
        if not started:
            return JsonResponse({"error": "a session is already running", "session": control.session_state()}, status=409)
    elif action == "stop":
        await sync_to_async(control.session_request_stop)()
    elif action == "speed":
        control.session_set(speed=speed)
    else:
        return JsonResponse({"error": "action must be one of start, stop, speed"}, status=400)
    await sync_to_async(audit_record)(user=user, action=f"session.{action}", target=("session", "replay"), request=request)
    return JsonResponse({"session": control.session_state()})


@login_required
@require_POST
def stream_control(request: HttpRequest) -> JsonResponse:
    """POST {"instrument": id, "action": "start"|"stop"}: the instrument's live market stream (staff only).

    Returns {"streams": [...]} (apps.market.streams.streams_payload); 400 naming the bad
    field, 403 below the admin role (apps.trading.controls.control_stream), 404 for an unknown instrument."""
    from apps.market.models import Instrument
    from apps.market.streams import streams_payload
    from apps.trading.controls import ControlDenied, control_stream

    try:
        body = json.loads(request.body or b"{}")
        instrument_id = int(body.get("instrument"))
    except (ValueError, TypeError) as exc:
        return JsonResponse({"error": f"instrument: expected an instrument id ({exc})"}, status=400)
    on = {"start": True, "stop": False}.get(body.get("action"))
    if on is None:
        return JsonResponse({"error": "action: must be 'start' or 'stop'"}, status=400)
    instrument = Instrument.objects.filter(pk=instrument_id).first()
    if instrument is None:
        return JsonResponse({"error": f"instrument: no instrument {instrument_id}"}, status=404)
    try:
        control_stream(user=request.user, instrument=instrument, on=on, request=request)
    except ControlDenied as exc:
        return JsonResponse({"error": str(exc)}, status=403)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse({"streams": streams_payload()})


@login_required
@require_GET
def risk_panel(request: HttpRequest) -> JsonResponse:
    """The user's accounts' trading state, kill switch and recent risk events, and the live
    orchestrator settings (``apps.risk.selectors.risk_panel``)."""
    from apps.risk.selectors import risk_panel as panel

    return JsonResponse(panel(user=request.user))


@login_required
@require_POST
def risk_controls(request: HttpRequest) -> JsonResponse:
    """POST (form-encoded) the orchestrator settings of the traded instrument; staff or traders
    only. The engine reads them at its next decision. 400 with the field errors on bad input."""
    from apps.market.models import Instrument
    from apps.trading.controls import ControlDenied, control_orchestrator
    from apps.trading.forms import OrchestratorControlForm
    from apps.trading.services import orchestrator_config_get

    instrument = Instrument.objects.filter(is_traded=True, enabled=True).first()
    if instrument is None:
        return JsonResponse({"error": "no traded instrument"}, status=404)
    form = OrchestratorControlForm(request.POST, instance=orchestrator_config_get(instrument=instrument))
    if not form.is_valid():
        if not role_at_least(request.user, TRADER):
            return JsonResponse({"error": "only staff or traders may change the orchestrator"}, status=403)
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    changes = {name: form.cleaned_data[name] for name in form.changed_data}
    try:
        control_orchestrator(user=request.user, instrument=instrument, changes=changes, request=request)
    except ControlDenied as exc:
        return JsonResponse({"error": str(exc)}, status=403)
    return JsonResponse({"ok": True, "changed": sorted(changes)})


@login_required
@require_POST
def kill_switch(request: HttpRequest) -> JsonResponse:
    """POST account=<id>&on=1|0: the kill switch of one of the user's accounts (staff may set any);
    new orders stop at the next decision cycle, cancels and exits still pass."""
    from apps.trading.controls import ControlDenied, control_kill_switch
    from apps.trading.models import TradingAccount

    admin = user_role(request.user) == ADMIN
    accounts = TradingAccount.objects.all() if admin else TradingAccount.objects.filter(owner=request.user)
    account = accounts.filter(pk=request.POST.get("account") or 0).first()
    if account is None:
        if not role_at_least(request.user, TRADER):
            return JsonResponse({"error": "only staff or traders may use the kill switch"}, status=403)
        return JsonResponse({"error": "no such account"}, status=404)
    try:
        state = control_kill_switch(user=request.user, account=account, on=request.POST.get("on") in ("1", "true", "on"),
                                    request=request)
    except ControlDenied as exc:
        return JsonResponse({"error": str(exc)}, status=403)
    return JsonResponse({"account": account.pk, "kill_switch": state.kill_switch})
