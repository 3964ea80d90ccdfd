"""The annotation page and its JSON endpoints (session auth + CSRF). Thin: parse, call one
service or selector, render.

Endpoints (all need a signed-in user; JSON errors are ``{"error": "field: message", "errors":
{field: [messages]}}``):

- ``GET  /annotations/``                       the page
- ``GET  /annotations/data/?instrument=&timeframe=&start=&end=``  candles, heatmap, annotations
- ``GET  /annotations/items/?instrument=&start=&end=``  annotations overlapping the range
- ``POST /annotations/items/``                 create (trader/admin) -> 201
- ``GET|PATCH|DELETE /annotations/items/<id>/``  read; change or delete your own -> 200 / 204

Times are ms since the epoch (UTC) or ISO 8601 with an offset; prices USD.
"""
from __future__ import annotations

import functools
import json
import logging

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from apps.accounts.roles import TRADER, role_at_least, user_role
from apps.annotations import selectors, services
from apps.annotations.forms import FIELDS, AnnotationForm, TimestampField, annotation_form_data
from apps.annotations.models import Annotation
from apps.market.models import Instrument

logger = logging.getLogger(__name__)


def _error(status: int, errors: dict[str, list[str]]) -> JsonResponse:
    field, messages = next(iter(errors.items()))
    return JsonResponse({"error": f"{field}: {messages[0]}", "errors": errors}, status=status)


def _login_required_json(view):
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return JsonResponse({"error": "login required"}, status=401)
        return view(request, *args, **kwargs)

    return wrapper


def _instruments() -> list[Instrument]:
    return list(Instrument.objects.filter(enabled=True).order_by("-is_traded", "venue", "symbol"))


@login_required
@require_GET
def annotation_page(request: HttpRequest) -> HttpResponse:
    """The page: instrument, range and timeframe pickers, the chart with the position tool, the list."""
    instruments = _instruments()
    config = {
        "user": {"id": request.user.pk, "name": request.user.get_username(), "staff": request.user.is_staff,
                 "role": user_role(request.user), "can_annotate": role_at_least(request.user, TRADER)},
        "instruments": [{"id": i.pk, "symbol": i.symbol, "venue": i.venue, "tick": float(i.tick_size)}
                        for i in instruments],
        "timeframes": list(selectors.TIMEFRAME_MS),
    }
    return render(request, "annotations/index.html", {"config": config})


def _instrument_param(request: HttpRequest) -> Instrument:
    raw = request.GET.get("instrument")
    if raw in (None, ""):
        instruments = _instruments()
        if not instruments:
            raise ValidationError({"instrument": ["no instrument is configured"]})
        return instruments[0]
    try:
        return Instrument.objects.get(pk=int(raw))
    except (ValueError, Instrument.DoesNotExist):
        raise ValidationError({"instrument": [f"no such instrument: {raw!r}"]}) from None


def _time_param(request: HttpRequest, name: str):
    raw = request.GET.get(name)
    if raw in (None, ""):
        return None
    try:
        return TimestampField().clean(raw)
    except ValidationError as exc:
        raise ValidationError({name: exc.messages}) from None


@_login_required_json
@require_GET
def annotation_data(request: HttpRequest) -> JsonResponse:
    """Candles (1s/1m/1h), the COB heatmap and the annotations of one instrument over a range;
    without start/end, the recorded session's range (``selectors.annotation_default_range``)."""
    try:
        instrument = _instrument_param(request)
        start, end = _time_param(request, "start"), _time_param(request, "end")
    except ValidationError as exc:
        return _error(400, exc.message_dict)
    default = selectors.annotation_default_range(instrument=instrument)
    start, end = start or default.start, end or default.end
    timeframe = request.GET.get("timeframe") or default.timeframe
    try:
        chart = selectors.annotation_chart_data(instrument=instrument, timeframe=timeframe, start=start, end=end)
    except selectors.RangeError as exc:
        return _error(400, {exc.field: [exc.message]})
    annotations = selectors.annotation_list_overlapping(instrument=instrument, start=start, end=end)
    return JsonResponse({
        "instrument": {"id": instrument.pk, "symbol": instrument.symbol, "tick": float(instrument.tick_size)},
        "timeframe": timeframe, "start": int(start.timestamp() * 1000), "end": int(end.timestamp() * 1000),
        **chart, "annotations": [selectors.annotation_payload(a) for a in annotations],
    })


def _json_body(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ValidationError({"body": ["expected a JSON object"]}) from None
    if not isinstance(body, dict):
        raise ValidationError({"body": ["expected a JSON object"]})
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ValidationError({unknown[0]: [f"not an annotation field; fields: {', '.join(FIELDS)}"]})
    return body


def _validated(data: dict) -> dict:
    form = AnnotationForm(data)
    if not form.is_valid():
        raise ValidationError({k: list(v) for k, v in form.errors.items()})
    return form.cleaned_data


@_login_required_json
@require_http_methods(["GET", "POST"])
def annotation_collection(request: HttpRequest) -> JsonResponse:
    """GET: the annotations overlapping ?start=&end= of ?instrument= (everyone's). POST: create one
    of the signed-in user (trader/admin; 403 for viewers); 400 naming the field, nothing stored."""
    try:
        if request.method == "GET":
            instrument = _instrument_param(request)
            default = selectors.annotation_default_range(instrument=instrument)
            start = _time_param(request, "start") or default.start
            end = _time_param(request, "end") or default.end
            rows = selectors.annotation_list_overlapping(instrument=instrument, start=start, end=end)
            return JsonResponse({"annotations": [selectors.annotation_payload(a) for a in rows]})
        data = _validated(_json_body(request))
        annotation = services.annotation_create(owner=request.user, **data)
    except PermissionDenied as exc:
        return JsonResponse({"error": str(exc)}, status=403)
    except ValidationError as exc:
        return _error(400, exc.message_dict)
    return JsonResponse({"annotation": selectors.annotation_payload(annotation)}, status=201)


@_login_required_json
@require_http_methods(["GET", "PATCH", "DELETE"])
def annotation_item(request: HttpRequest, pk: int) -> HttpResponse:
    """GET one annotation (anyone's); PATCH the given fields of your own (staff: anyone's); DELETE
    your own. 404 for an unknown id, 403 for someone else's, 400 naming the bad field."""
    annotation = Annotation.objects.select_related("instrument", "owner").filter(pk=pk).first()
    if annotation is None:
        return JsonResponse({"error": f"no annotation {pk}"}, status=404)
    try:
        if request.method == "GET":
            return JsonResponse({"annotation": selectors.annotation_payload(annotation)})
        services.annotation_check_change(annotation=annotation, user=request.user)  # 403 before 400
        if request.method == "DELETE":
            services.annotation_delete(annotation=annotation, user=request.user)
            return HttpResponse(status=204)
        body = _json_body(request)
        data = _validated({**annotation_form_data(annotation), **body})
        annotation = services.annotation_update(annotation=annotation, user=request.user,
                                                **{k: data[k] for k in body})
    except PermissionDenied as exc:
        return JsonResponse({"error": str(exc)}, status=403)
    except ValidationError as exc:
        return _error(400, exc.message_dict)
    return JsonResponse({"annotation": selectors.annotation_payload(annotation)})
