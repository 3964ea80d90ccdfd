"""Inference history (predictions) and the model registry (checkpoints)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import IsAdminOrReadOnly
from apps.accounts.services import audit_record
from apps.api import filters, serializers
from apps.api.pagination import time_cursor
from apps.predictions.models import ModelCheckpoint, Prediction


class PredictionViewSet(viewsets.ReadOnlyModelViewSet):
    """Inference history, newest first (``?ordering=ts_event`` for oldest first); cursor pages.
    Filters: instrument/symbol/venue, model_name, status, action, checkpoint, start/end on ts_event."""

    queryset = Prediction.objects.defer("input_package")
    serializer_class = serializers.PredictionSerializer
    filterset_class = filters.PredictionFilter
    filter_backends = [*viewsets.ReadOnlyModelViewSet.filter_backends, OrderingFilter]
    ordering_fields = ["ts_event"]
    pagination_class = time_cursor("-ts_event")


class CheckpointViewSet(viewsets.ReadOnlyModelViewSet):
    """Registered checkpoints per model (best-ranked live unless an admin pinned one)."""

    queryset = ModelCheckpoint.objects.all().order_by("model_name", "-created_at", "-pk")
    serializer_class = serializers.CheckpointSerializer
    filterset_class = filters.CheckpointFilter
    permission_classes = [IsAdminOrReadOnly]

    @extend_schema(request=None, responses=serializers.CheckpointSerializer)
    @action(detail=True, methods=["post"])
    def pin(self, request: Request, pk: str) -> Response:
        """Admin rollback: pin this checkpoint as its model's live one (``checkpoint_rollback``)."""
        from apps.predictions.services import checkpoint_rollback

        checkpoint = checkpoint_rollback(checkpoint=self.get_object())
        audit_record(user=request.user, action="checkpoint.pin", target=checkpoint, request=request)
        return Response(self.get_serializer(checkpoint).data)

    @extend_schema(request=None, responses=serializers.CheckpointSerializer(allow_null=True))
    @action(detail=True, methods=["post"])
    def unpin(self, request: Request, pk: str) -> Response:
        """Drop the pin of this checkpoint's model: the best-ranked checkpoint goes live again; returns it."""
        from apps.predictions.services import checkpoint_unpin

        checkpoint = self.get_object()
        live = checkpoint_unpin(model_name=checkpoint.model_name)
        audit_record(user=request.user, action="checkpoint.unpin", target=checkpoint, request=request)
        return Response(self.get_serializer(live).data if live else None)
