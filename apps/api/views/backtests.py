"""Backtests: every role reads every run (as the backtest pages show them); traders start one.

Create enqueues the run on the ``default`` queue after the commit (``workers.backtest.run_backtest``)
and answers 201 with the PENDING run at once; poll the run for ``status``/``progress``. In the
embedded default (no broker) the task runs in-process, so the request returns when the run ends.
"""
from __future__ import annotations

from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import IsTraderOrReadOnly
from apps.accounts.services import audit_record
from apps.api import filters
from apps.api.serializers_backtests import BacktestCreateSerializer, BacktestRunSerializer
from apps.backtest.models import BacktestRun


class CsvRenderer(BaseRenderer):
    """``text/csv`` for the report (so ``Accept: text/csv`` is honoured); an error body stays JSON text."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return data.encode() if isinstance(data, str) else JSONRenderer().render(data)


class BacktestViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Backtest runs, newest first (module docstring)."""

    queryset = BacktestRun.objects.defer("series").select_related("created_by")
    serializer_class = BacktestRunSerializer
    filterset_class = filters.BacktestFilter
    permission_classes = [IsTraderOrReadOnly]

    @extend_schema(request=BacktestCreateSerializer, responses={201: BacktestRunSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        """Start a backtest: 201 with the PENDING run; 400 naming a bad field. Audited."""
        from apps.backtest.services import BacktestError, backtest_create, backtest_enqueue

        body = BacktestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                run = backtest_create(user=request.user, **body.validated_data)
                audit_record(user=request.user, action="backtest.start", target=run, payload=body.validated_data,
                             request=request)
                transaction.on_commit(lambda: backtest_enqueue(run=run))
        except BacktestError as exc:
            field, _, message = str(exc).partition(":")
            raise ValidationError({field if message else "non_field_errors": [message.strip() or str(exc)]}) from exc
        return Response(BacktestRunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="per-second series")})
    @action(detail=True, methods=["get"], renderer_classes=[CsvRenderer, JSONRenderer])
    def report(self, request: Request, pk: str) -> HttpResponse:
        """The run's per-second series as CSV (header ``ml.backtest.report.CSV_HEADER``; empty
        before the run finishes)."""
        from apps.backtest.services import backtest_csv

        run = BacktestRun.objects.select_related("account").get(pk=self.get_object().pk)
        response = HttpResponse(backtest_csv(run=run), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="backtest-{run.pk}.csv"'
        return response
