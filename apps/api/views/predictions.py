"""Inference history (predictions) and the model registry (checkpoints)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.permissions import IsAdminOrReadOnly, IsTraderOrReadOnly
from apps.accounts.services import audit_record
from apps.api import filters, serializers
from apps.api.pagination import time_cursor
from apps.predictions.models import ModelCheckpoint, Prediction, TrainingRun


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
    """Registered checkpoints per model: state live / shadow / retired, the ranking key
    ``net_edge_bps`` and the last promotion check (``evidence``); filters model_name, is_active,
    pinned, state. Admins promote, roll back, pin and unpin."""

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

    @extend_schema(request=None, responses=serializers.CheckpointSerializer)
    @action(detail=True, methods=["post"])
    def promote(self, request: Request, pk: str) -> Response:
        """Admin: make this checkpoint (e.g. a shadow) live now; the live one it replaces becomes its
        rollback target (``checkpoint_promote``)."""
        from apps.predictions.services import checkpoint_promote

        checkpoint = self.get_object()
        evidence = {**checkpoint.evidence, "decision": "promoted", "why": f"promoted by {request.user.get_username()}"}
        checkpoint = checkpoint_promote(checkpoint=checkpoint, evidence=evidence)
        audit_record(user=request.user, action="checkpoint.promote", target=checkpoint, request=request)
        return Response(self.get_serializer(checkpoint).data)

    @extend_schema(request=None, responses=serializers.CheckpointSerializer)
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str) -> Response:
        """Admin one-click rollback: the checkpoint this one replaced goes live again, pinned
        (``checkpoint_rollback``); 409 when it replaced none. Returns the checkpoint now live."""
        from apps.predictions.services import checkpoint_rollback

        checkpoint = self.get_object()
        if checkpoint.replaced is None:
            return Response({"detail": f"{checkpoint} replaced no checkpoint"}, status=status.HTTP_409_CONFLICT)
        live = checkpoint_rollback(checkpoint=checkpoint.replaced)
        audit_record(user=request.user, action="checkpoint.pin", target=live, request=request)
        return Response(self.get_serializer(live).data)


class TrainingRunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Training runs, newest first, with their live progress; filter ``model_name``, ``state``.
    POST {"model_name", "kind": "fine_tune" | "full"} is "Train now" (traders and admins): 202 with
    the queued run; 409 when a run of that model is already queued or running."""

    queryset = TrainingRun.objects.all().order_by("-started_at", "-pk")
    serializer_class = serializers.TrainingRunSerializer
    permission_classes = [IsTraderOrReadOnly]
    filterset_fields = ["model_name", "state", "kind"]

    @extend_schema(responses={202: serializers.TrainingRunSerializer})
    def create(self, request: Request, *args, **kwargs) -> Response:
        from apps.predictions.learning import TrainingBusy, training_request

        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            run = training_request(model_name=serializer.validated_data["model_name"],
                                   kind=serializer.validated_data.get("kind", TrainingRun.Kind.FINE_TUNE),
                                   requested_by=request.user.get_username())
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            return Response({"model_name" if field == "model" else field: [message]}, status=status.HTTP_400_BAD_REQUEST)
        except TrainingBusy as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        audit_record(user=request.user, action="training.request", target=run, request=request)
        run.refresh_from_db()
        return Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)
