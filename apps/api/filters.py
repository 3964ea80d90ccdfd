"""django-filter sets of the API lists. Times are ISO 8601 (``2024-08-08T10:00:00Z``), ``start``
inclusive and ``end`` exclusive; ``instrument`` is an instrument id, ``symbol``/``venue`` its names."""
from __future__ import annotations

from datetime import UTC

import django_filters as filters
from django import forms
from django_filters.fields import IsoDateTimeField

from apps.market.models import Candle, CobFrame, DataGap, Instrument, MarketStream
from apps.predictions.models import ModelCheckpoint, Prediction


class _UtcIsoDateTimeField(IsoDateTimeField):
    """ISO 8601 with any offset, converted to UTC here: Postgres refuses offsets beyond ±15:59."""

    def clean(self, value):
        parsed = super().clean(value)
        try:
            return parsed.astimezone(UTC) if parsed is not None else None
        except OverflowError:
            raise forms.ValidationError("out of the supported time range", code="invalid") from None


class TimeFilter(filters.IsoDateTimeFilter):
    field_class = _UtcIsoDateTimeField


class IdFilter(filters.NumberFilter):
    """A row id: a positive integer (a float or a 20-digit number is a 400, not a database error)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class _InstrumentFilters(filters.FilterSet):
    instrument = IdFilter(field_name="instrument_id", help_text="Instrument id")
    symbol = filters.CharFilter(field_name="instrument__symbol", lookup_expr="iexact", help_text="e.g. ETHUSDT")
    venue = filters.ChoiceFilter(field_name="instrument__venue", choices=Instrument.Venue.choices)


class InstrumentFilter(filters.FilterSet):
    symbol = filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Instrument
        fields = ["venue", "symbol", "enabled", "is_traded"]


class CandleFilter(_InstrumentFilters):
    start = TimeFilter(field_name="open_time", lookup_expr="gte", help_text="open_time >= start")
    end = TimeFilter(field_name="open_time", lookup_expr="lt", help_text="open_time < end")

    class Meta:
        model = Candle
        fields = ["instrument", "symbol", "venue", "timeframe", "start", "end"]


class CobFrameFilter(_InstrumentFilters):
    start = TimeFilter(field_name="ts", lookup_expr="gte", help_text="ts >= start")
    end = TimeFilter(field_name="ts", lookup_expr="lt", help_text="ts < end")

    class Meta:
        model = CobFrame
        fields = ["instrument", "symbol", "venue", "start", "end"]


class DataGapFilter(_InstrumentFilters):
    start = TimeFilter(field_name="ts_event", lookup_expr="gte")
    end = TimeFilter(field_name="ts_event", lookup_expr="lt")

    class Meta:
        model = DataGap
        fields = ["instrument", "symbol", "venue", "cause", "backfilled", "start", "end"]


class MarketStreamFilter(_InstrumentFilters):
    class Meta:
        model = MarketStream
        fields = ["instrument", "symbol", "venue", "desired", "status"]


class PredictionFilter(_InstrumentFilters):
    checkpoint = IdFilter(field_name="checkpoint_id", help_text="Checkpoint id")
    start = TimeFilter(field_name="ts_event", lookup_expr="gte", help_text="ts_event >= start")
    end = TimeFilter(field_name="ts_event", lookup_expr="lt", help_text="ts_event < end")

    class Meta:
        model = Prediction
        fields = ["instrument", "symbol", "venue", "model_name", "status", "action", "checkpoint", "start", "end"]


class CheckpointFilter(filters.FilterSet):
    class Meta:
        model = ModelCheckpoint
        fields = ["model_name", "is_active", "pinned"]
