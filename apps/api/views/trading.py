"""Trading: the user's accounts (credentials write-only), decisions, orders, order events, fills
and positions. Every list and detail is limited to the requesting user's own accounts
(``OwnedQuerysetMixin``; admins see all): another user's row is a 404.

Orders are read-only over the API. Cancelling is not offered: the paper venue's resting orders
live in the memory of the engine process that matches them (``apps.trading.execution``), so a
cancel from the web process would change the record without the venue; it needs a cancel request
the engine picks up, which does not exist yet.
"""
from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import IsTraderOrReadOnly
from apps.accounts.services import audit_record
from apps.api import filters
from apps.api import serializers_trading as s
from apps.api.mixins import OwnedQuerysetMixin
from apps.api.pagination import time_cursor
from apps.trading.models import Decision, Fill, Order, OrderEvent, Position, TradingAccount


class CredentialsUnavailable(APIException):
    status_code = 503
    default_detail = "credentials cannot be stored: the server has no GOGO_SECRETS_KEY"
    default_code = "secrets_key_missing"


class TradingAccountViewSet(OwnedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """The user's trading accounts (paper or live). Exchange credentials are never returned."""

    queryset = TradingAccount.objects.select_related("owner").order_by("pk")
    serializer_class = s.TradingAccountSerializer
    filterset_class = filters.TradingAccountFilter
    permission_classes = [IsTraderOrReadOnly]
    owner_path = "owner"

    @extend_schema(request=s.CredentialsSerializer, responses=s.TradingAccountSerializer)
    @action(detail=True, methods=["post"])
    def credentials(self, request: Request, pk: str) -> Response:
        """Store the live exchange API key and secret (write-only; both blank clear them). The
        answer is the account with ``has_credentials``, never a secret. Audited (no secret in it).
        503 when the server has no GOGO_SECRETS_KEY."""
        from apps.trading.secrets import SecretsKeyMissing
        from apps.trading.services import account_set_credentials

        account = self.get_object()
        body = s.CredentialsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                account = account_set_credentials(account=account, **body.validated_data)
                audit_record(user=request.user, action="account.credentials", target=account,
                             payload={"stored": account.has_credentials}, request=request)
        except SecretsKeyMissing as exc:
            raise CredentialsUnavailable() from exc
        return Response(self.get_serializer(account).data)


class DecisionViewSet(OwnedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """The orchestrator's decisions for the user's accounts, newest first; cursor pages."""

    queryset = Decision.objects.all()
    serializer_class = s.DecisionSerializer
    filterset_class = filters.DecisionFilter
    owner_path = "account__owner"
    pagination_class = time_cursor("-ts_event")


class OrderViewSet(OwnedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """Orders of the user's accounts, newest first; cursor pages. Read-only (module docstring)."""

    queryset = Order.objects.all()
    serializer_class = s.OrderSerializer
    filterset_class = filters.OrderFilter
    owner_path = "account__owner"
    pagination_class = time_cursor("-ts_event")


class OrderEventViewSet(OwnedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """Lifecycle transitions of the user's orders, newest first; cursor pages."""

    queryset = OrderEvent.objects.all()
    serializer_class = s.OrderEventSerializer
    filterset_class = filters.OrderEventFilter
    owner_path = "order__account__owner"
    pagination_class = time_cursor("-ts_event")


class FillViewSet(OwnedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """Executions of the user's orders (price USD, quantity base units, fee USD), newest first."""

    queryset = Fill.objects.select_related("order")
    serializer_class = s.FillSerializer
    filterset_class = filters.FillFilter
    owner_path = "order__account__owner"
    pagination_class = time_cursor("-ts_event")


class PositionViewSet(OwnedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """Net positions of the user's accounts (signed base units; negative = short)."""

    queryset = Position.objects.order_by("account_id", "instrument_id")
    serializer_class = s.PositionSerializer
    filterset_class = filters.PositionFilter
    owner_path = "account__owner"
