"""Risk: limits per account and instrument (traders change their own), the trading state and kill
switch of each account, and risk events. Limited to the requesting user's accounts (admins: all);
another user's row is a 404. The kill switch itself is a control action (``/control/kill-switch/``)."""
from __future__ import annotations

from django.db import transaction
from rest_framework import mixins, viewsets

from apps.accounts.permissions import IsTraderOrReadOnly
from apps.accounts.services import audit_record
from apps.api import filters
from apps.api import serializers_trading as s
from apps.api.mixins import OwnedQuerysetMixin
from apps.api.pagination import time_cursor
from apps.risk.models import RiskEvent, RiskLimit, RiskState


class RiskLimitViewSet(OwnedQuerysetMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Risk limits of the user's accounts. PUT/PATCH (traders, own accounts): validated ranges
    (400 naming the field); the engine applies them from its next session; audited with the
    old and new value of each changed field."""

    queryset = RiskLimit.objects.order_by("account_id", "instrument_id")
    serializer_class = s.RiskLimitSerializer
    filterset_class = filters.RiskLimitFilter
    permission_classes = [IsTraderOrReadOnly]
    owner_path = "account__owner"

    def perform_update(self, serializer) -> None:
        before = {name: getattr(serializer.instance, name) for name in serializer.validated_data}
        with transaction.atomic():
            limit = serializer.save()
            diff = {name: {"from": before[name], "to": getattr(limit, name)} for name in before
                    if before[name] != getattr(limit, name)}
            audit_record(user=self.request.user, action="risk_limit.update", target=limit, payload=diff,
                         request=self.request)


class RiskStateViewSet(OwnedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """Trading state, kill switch and risk figures of the user's accounts (addressed by account id)."""

    queryset = RiskState.objects.order_by("account_id")
    serializer_class = s.RiskStateSerializer
    filterset_class = filters.RiskStateFilter
    owner_path = "account__owner"
    lookup_field = "account"
    lookup_value_regex = r"\d+"


class RiskEventViewSet(OwnedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """Rejections, state changes, kill switch toggles, breakers and stops of the user's accounts,
    newest first; cursor pages."""

    queryset = RiskEvent.objects.all()
    serializer_class = s.RiskEventSerializer
    filterset_class = filters.RiskEventFilter
    owner_path = "account__owner"
    pagination_class = time_cursor("-ts_event")
