"""Dashboard pages. Thin: read through selectors, act through services."""
from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from apps.dashboard.selectors import dashboard_history
from apps.pipeline import control


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {"session": control.session_state(), "min_completeness": settings.GOGO_MIN_COMPLETENESS}
    return render(request, "dashboard/index.html", context)


@login_required
@require_GET
def history(request: HttpRequest) -> JsonResponse:
    data = dashboard_history(user=request.user)
    data["session"] = control.session_state()
    return JsonResponse(data)


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
    return JsonResponse({"session": control.session_state()})
