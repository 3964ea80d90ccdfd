"""Market data: instruments, candles, COB frames, the COB heatmap, data gaps and the live streams."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import IsAdminOrReadOnly
from apps.accounts.services import audit_record
from apps.api import filters, serializers
from apps.api.hotcache import page_get, page_key, page_set
from apps.api.pagination import time_cursor
from apps.api.renderers import OrjsonRenderer
from apps.market.models import Candle, CobFrame, DataGap, Instrument, MarketStream


class InstrumentViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Instruments: every role reads; admins create and edit (no delete: it would cascade the history)."""

    queryset = Instrument.objects.all().order_by("venue", "symbol")
    serializer_class = serializers.InstrumentSerializer
    permission_classes = [IsAdminOrReadOnly]
    filterset_class = filters.InstrumentFilter

    def perform_create(self, serializer) -> None:
        instance = serializer.save()
        audit_record(user=self.request.user, action="instrument.create", target=instance,
                     payload=self.request.data, request=self.request)

    def perform_update(self, serializer) -> None:
        instance = serializer.save()
        audit_record(user=self.request.user, action="instrument.update", target=instance,
                     payload=self.request.data, request=self.request)


class CandleViewSet(viewsets.ReadOnlyModelViewSet):
    """Candles, oldest first by ``open_time`` (``?ordering=-open_time`` for newest first); cursor pages."""

    queryset = Candle.objects.all()
    serializer_class = serializers.CandleSerializer
    filterset_class = filters.CandleFilter
    filter_backends = [*viewsets.ReadOnlyModelViewSet.filter_backends, OrderingFilter]
    ordering_fields = ["open_time"]
    pagination_class = time_cursor("open_time")

    def list(self, request: Request, *args, **kwargs):
        """The page as JSON bytes from the hot cache (``GOGO_API_CANDLES_CACHE_S``) when there, else
        built, rendered and stored there. A page is public market data, the same for every user (the
        user has passed authentication, permission and throttling before this runs), so one entry
        serves every user; the key is the absolute URL (host, scheme and the full query string: the
        ``next``/``previous`` links are absolute). Closed candles never change; the newest page may be
        up to the TTL behind the stream. The browsable API and ``; indent=`` requests skip the cache."""
        ttl = settings.GOGO_API_CANDLES_CACHE_S
        renderer = request.accepted_renderer
        if ttl <= 0 or type(renderer) is not OrjsonRenderer or "indent" in request.accepted_media_type:
            return super().list(request, *args, **kwargs)
        key = page_key(name="candles", url=request.build_absolute_uri())
        body = page_get(key)
        if body is None:
            data = super().list(request, *args, **kwargs).data
            body = renderer.render(data, request.accepted_media_type, self.get_renderer_context())
            page_set(key, body, ttl_s=ttl)
        return HttpResponse(body, content_type=renderer.media_type)

    def filter_queryset(self, queryset):
        """The list reads plain rows (``.values``: no model instances; the cursor reads ``open_time``
        from the dict); a detail keeps the model row."""
        queryset = super().filter_queryset(queryset)
        return queryset.values(*serializers.CANDLE_COLUMNS) if self.action == "list" else queryset


class CobFrameViewSet(viewsets.ReadOnlyModelViewSet):
    """Stored COB frames (one per instrument and exchange second), oldest first; cursor pages."""

    queryset = CobFrame.objects.all()
    serializer_class = serializers.CobFrameSerializer
    filterset_class = filters.CobFrameFilter
    filter_backends = [*viewsets.ReadOnlyModelViewSet.filter_backends, OrderingFilter]
    ordering_fields = ["ts"]
    pagination_class = time_cursor("ts")


class HeatmapView(APIView):
    """GET the COB heatmap of the newest stored frames of one instrument (as the dashboard shows)."""

    @extend_schema(parameters=[serializers.HeatmapQuerySerializer], responses=serializers.HeatmapSerializer)
    def get(self, request: Request) -> Response:
        from apps.market.selectors import cob_frame_latest_events
        from ml.market.heatmap import heatmap_matrix

        query = serializers.HeatmapQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        p = query.validated_data
        instrument = Instrument.objects.filter(venue=p["venue"], symbol=p["symbol"].upper()).first()
        frames = cob_frame_latest_events(instrument=instrument, seconds=p["seconds"]) if instrument else []
        if not frames:
            raise NotFound(f"no COB frames for {p['symbol'].upper()}@{p['venue']}")
        m = heatmap_matrix(frames, window_s=p["seconds"], n_buckets=min(p["buckets"], frames[-1].n_buckets))
        return Response({"symbol": m.symbol, "bucket_width": m.bucket_width, "ts": m.ts.tolist(),
                         "price": m.price.tolist(), "imbalance": _nan_to_null(m.imbalance),
                         "volume": _nan_to_null(m.volume), "spread": _nan_to_null(m.spread), "mid": _nan_to_null(m.mid)})


def _nan_to_null(array) -> list:
    import numpy as np

    return np.where(np.isnan(array), None, np.round(array, 6)).tolist()


class DataGapViewSet(viewsets.ReadOnlyModelViewSet):
    """Holes in the market data, newest first."""

    queryset = DataGap.objects.all().order_by("-ts_event", "-pk")
    serializer_class = serializers.DataGapSerializer
    filterset_class = filters.DataGapFilter


class MarketStreamViewSet(viewsets.ReadOnlyModelViewSet):
    """The live market stream of each instrument (addressed by instrument id); admins start and stop them."""

    queryset = MarketStream.objects.select_related("instrument").order_by("instrument__venue", "instrument__symbol")
    serializer_class = serializers.MarketStreamSerializer
    filterset_class = filters.MarketStreamFilter
    permission_classes = [IsAdminOrReadOnly]
    lookup_field = "instrument"
    lookup_value_regex = r"\d+"

    @extend_schema(request=None, responses=serializers.MarketStreamSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request: Request, instrument: str) -> Response:
        """Want the stream running: a session starts within seconds. 400 for a disabled instrument."""
        return self._request(True)

    @extend_schema(request=None, responses=serializers.MarketStreamSerializer)
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, instrument: str) -> Response:
        """Want the stream stopped: the running session drops it within about a second."""
        return self._request(False)

    def _request(self, on: bool) -> Response:
        """The stream control action (``apps.trading.controls.control_stream``: role check and audit row)."""
        from apps.api.views.control import run_control
        from apps.trading.controls import control_stream

        instrument = self.get_object().instrument
        stream = run_control(lambda: control_stream(user=self.request.user, instrument=instrument, on=on,
                                                    request=self.request), field="instrument")
        return Response(self.get_serializer(stream).data, status=status.HTTP_200_OK)
