"""Control actions: ``POST /api/v1/control/<what>/``, each a thin call of one function of
``apps.trading.controls``, which checks the role (and account ownership), applies the change and
writes the AuditLog row. Errors: ``ControlDenied`` -> 403; ``ValueError`` and Django's
``ValidationError`` -> 400 naming the field; nothing is changed or audited then.

| endpoint                 | body                                   | role    | answer                  |
|--------------------------|----------------------------------------|---------|-------------------------|
| ``control/streams/``     | ``{instrument, on}``                   | admin   | the stream's state      |
| ``control/trading/``     | ``{instrument, on}``                   | trader  | the orchestrator config |
| ``control/orchestrator/``| ``{instrument, <settings>...}``        | trader  | the orchestrator config |
| ``control/models/``      | ``{model_name, on}``                   | trader  | the model setting       |
| ``control/kill-switch/`` | ``{account, on}`` (own account)        | trader  | the account's risk state|

The kill switch looks ``account`` up among the user's own accounts (admins: all): another user's
account is a 400 "does not exist", the same answer as an account that does not exist.

``/streams/{instrument}/start|stop/`` are the same stream action addressed by instrument.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import AuditLog
from apps.accounts.permissions import IsAdminOrReadOnly, IsAdminRole, IsTraderOrReadOnly
from apps.api import filters
from apps.api import serializers_control as s
from apps.api.pagination import time_cursor
from apps.api.serializers_trading import RiskStateSerializer
from apps.trading import controls


def run_control(call, *, field: str):
    """Call a control function; map its errors to DRF's (403, or 400 naming ``field`` unless the
    message starts with ``<name>:``)."""
    try:
        return call()
    except controls.ControlDenied as exc:
        raise PermissionDenied(str(exc)) from exc
    except DjangoValidationError as exc:
        raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {field: exc.messages}) from exc
    except ValueError as exc:
        name, sep, message = str(exc).partition(":")
        named = sep and name.isidentifier()
        raise ValidationError({name if named else field: [message.strip() if named else str(exc)]}) from exc


class _ControlView(APIView):
    body: type = s.InstrumentSwitchSerializer

    def _body(self, request: Request) -> dict:
        body = self.body(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        return body.validated_data


class StreamControlView(_ControlView):
    """Start or stop an instrument's live market stream (admins)."""

    permission_classes = [IsAdminOrReadOnly]

    @extend_schema(request=s.InstrumentSwitchSerializer, responses=s.StreamStateSerializer)
    def post(self, request: Request) -> Response:
        data = self._body(request)
        stream = run_control(lambda: controls.control_stream(user=request.user, instrument=data["instrument"],
                                                             on=data["on"], request=request), field="instrument")
        return Response(s.StreamStateSerializer(stream).data)


class TradingControlView(_ControlView):
    """Allow (``on``) or hold new entries on an instrument; stops and exits still run (traders)."""

    permission_classes = [IsTraderOrReadOnly]

    @extend_schema(request=s.InstrumentSwitchSerializer, responses=s.OrchestratorConfigSerializer)
    def post(self, request: Request) -> Response:
        data = self._body(request)
        config = run_control(lambda: controls.control_trading(user=request.user, instrument=data["instrument"],
                                                              on=data["on"], request=request), field="instrument")
        return Response(s.OrchestratorConfigSerializer(config).data)


class OrchestratorControlView(_ControlView):
    """Change live orchestrator settings of an instrument (thresholds, cooldown, notional, filters,
    gating); the engine applies them at its next decision. Audited with old and new values (traders)."""

    permission_classes = [IsTraderOrReadOnly]
    body = s.OrchestratorChangeSerializer

    @extend_schema(request=s.OrchestratorChangeSerializer, responses=s.OrchestratorConfigSerializer)
    def post(self, request: Request) -> Response:
        data = dict(self._body(request))
        instrument = data.pop("instrument")
        config = run_control(lambda: controls.control_orchestrator(user=request.user, instrument=instrument,
                                                                   changes=data, request=request), field="non_field_errors")
        return Response(s.OrchestratorConfigSerializer(config).data)


class ModelControlView(_ControlView):
    """Enable or disable a model family for inference and decisions (traders)."""

    permission_classes = [IsTraderOrReadOnly]
    body = s.ModelSwitchSerializer

    @extend_schema(request=s.ModelSwitchSerializer, responses=s.ModelSettingSerializer)
    def post(self, request: Request) -> Response:
        data = self._body(request)
        setting = run_control(lambda: controls.control_model(user=request.user, model_name=data["model_name"],
                                                             on=data["on"], request=request), field="model_name")
        return Response(s.ModelSettingSerializer(setting).data)


class KillSwitchControlView(_ControlView):
    """Set the kill switch of a trading account: your own (another user's is a 400 "does not exist",
    as a nonexistent one; admins: any)."""

    permission_classes = [IsTraderOrReadOnly]
    body = s.KillSwitchSerializer

    @extend_schema(request=s.KillSwitchSerializer, responses=RiskStateSerializer)
    def post(self, request: Request) -> Response:
        data = self._body(request)
        state = run_control(lambda: controls.control_kill_switch(user=request.user, account=data["account"],
                                                                 on=data["on"], request=request), field="account")
        return Response(RiskStateSerializer(state).data)


class AuditLogViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit log (admins only), newest first; cursor pages. Filters: action, action_prefix, user,
    username, target_type, target_id, start/end on created_at."""

    queryset = AuditLog.objects.all()
    serializer_class = s.AuditLogSerializer
    filterset_class = filters.AuditLogFilter
    permission_classes = [IsAdminRole]
    pagination_class = time_cursor("-created_at")
