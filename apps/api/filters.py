"""django-filter sets of the API lists. Times are ISO 8601 (``2024-08-08T10:00:00Z``), ``start``
inclusive and ``end`` exclusive; ``instrument`` is an instrument id, ``symbol``/``venue`` its names."""
from __future__ import annotations

import copy
from datetime import UTC

import django_filters as filters
from django import forms
from django.http import QueryDict
from django_filters.fields import IsoDateTimeField

from apps.accounts.models import AuditLog
from apps.annotations.models import Annotation
from apps.backtest.models import BacktestRun
from apps.market.models import Candle, CobFrame, DataGap, Instrument, MarketStream
from apps.predictions.models import ModelCheckpoint, Prediction
from apps.risk.models import RiskEvent, RiskLimit, RiskState
from apps.trading.models import Decision, Fill, Order, OrderEvent, Position, TradingAccount


class FilterSet(filters.FilterSet):
    """django-filter's FilterSet with its per-request set-up cut (same behaviour): the filters are
    shallow copies (a Filter holds only its declaration; django-filter deep-copies every filter and
    its form field per request) and the form class, built from the declarations alone, is made once
    per FilterSet class. Together they were about a third of the candles list's CPU time."""

    _form_classes: dict[type, type] = {}

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None):
        if queryset is None:
            queryset = self._meta.model._default_manager.all()
        self.is_bound = data is not None
        self.data = data or QueryDict()
        self.queryset = queryset
        self.request = request
        self.form_prefix = prefix
        self.filters = {name: copy.copy(f) for name, f in self.base_filters.items()}
        for filter_ in self.filters.values():
            filter_.model = queryset.model
            filter_.parent = self
            if filter_.method is not None:  # rebind its FilterMethod to this copy (it finds the method via parent)
                filter_.method = filter_.method

    def get_form_class(self) -> type:
        form_class = self._form_classes.get(type(self))
        if form_class is None:
            form_class = self._form_classes[type(self)] = super().get_form_class()
        return form_class


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


class _InstrumentFilters(FilterSet):
    instrument = IdFilter(field_name="instrument_id", help_text="Instrument id")
    symbol = filters.CharFilter(field_name="instrument__symbol", lookup_expr="iexact", help_text="e.g. ETHUSDT")
    venue = filters.ChoiceFilter(field_name="instrument__venue", choices=Instrument.Venue.choices)


class InstrumentFilter(FilterSet):
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
        fields = ["instrument", "symbol", "venue", "model_name", "shadow", "status", "action", "checkpoint", "start",
                  "end"]


class CheckpointFilter(FilterSet):
    class Meta:
        model = ModelCheckpoint
        fields = ["model_name", "is_active", "pinned", "state"]


class _AccountFilters(_InstrumentFilters):
    account = IdFilter(field_name="account_id", help_text="Trading account id")


class DecisionFilter(_AccountFilters):
    start = TimeFilter(field_name="ts_event", lookup_expr="gte", help_text="ts_event >= start")
    end = TimeFilter(field_name="ts_event", lookup_expr="lt", help_text="ts_event < end")

    class Meta:
        model = Decision
        fields = ["account", "instrument", "symbol", "venue", "action", "filter", "start", "end"]


class OrderFilter(_AccountFilters):
    decision = IdFilter(field_name="decision_id", help_text="Decision id")
    open = filters.BooleanFilter(method="_open", help_text="true: NEW or PARTIALLY_FILLED only; false: finished only")
    start = TimeFilter(field_name="ts_event", lookup_expr="gte", help_text="ts_event >= start")
    end = TimeFilter(field_name="ts_event", lookup_expr="lt", help_text="ts_event < end")

    class Meta:
        model = Order
        fields = ["account", "instrument", "symbol", "venue", "decision", "side", "order_type", "purpose", "status",
                  "client_order_id", "open", "start", "end"]

    def _open(self, queryset, name, value):
        return queryset.filter(status__in=Order.OPEN) if value else queryset.exclude(status__in=Order.OPEN)


class OrderEventFilter(FilterSet):
    order = IdFilter(field_name="order_id", help_text="Order id")
    account = IdFilter(field_name="order__account_id", help_text="Trading account id")
    start = TimeFilter(field_name="ts_event", lookup_expr="gte")
    end = TimeFilter(field_name="ts_event", lookup_expr="lt")

    class Meta:
        model = OrderEvent
        fields = ["order", "account", "status", "start", "end"]


class FillFilter(FilterSet):
    order = IdFilter(field_name="order_id", help_text="Order id")
    account = IdFilter(field_name="order__account_id", help_text="Trading account id")
    instrument = IdFilter(field_name="order__instrument_id", help_text="Instrument id")
    start = TimeFilter(field_name="ts_event", lookup_expr="gte")
    end = TimeFilter(field_name="ts_event", lookup_expr="lt")

    class Meta:
        model = Fill
        fields = ["order", "account", "instrument", "liquidity", "start", "end"]


class PositionFilter(_AccountFilters):
    class Meta:
        model = Position
        fields = ["account", "instrument", "symbol", "venue"]


class TradingAccountFilter(FilterSet):
    owner = IdFilter(field_name="owner_id", help_text="Owner's user id (admins see every user's accounts)")

    class Meta:
        model = TradingAccount
        fields = ["owner", "mode", "venue", "live_enabled", "auto_trade"]


class RiskLimitFilter(_AccountFilters):
    class Meta:
        model = RiskLimit
        fields = ["account", "instrument", "symbol", "venue", "sizing"]


class RiskStateFilter(FilterSet):
    class Meta:
        model = RiskState
        fields = ["state", "kill_switch"]


class RiskEventFilter(_AccountFilters):
    order = IdFilter(field_name="order_id", help_text="Order id")
    start = TimeFilter(field_name="ts_event", lookup_expr="gte")
    end = TimeFilter(field_name="ts_event", lookup_expr="lt")

    class Meta:
        model = RiskEvent
        fields = ["account", "instrument", "symbol", "venue", "order", "kind", "rule", "start", "end"]


class AnnotationFilter(_InstrumentFilters):
    owner = IdFilter(field_name="owner_id", help_text="Author's user id")
    mine = filters.BooleanFilter(method="_mine", help_text="true: only the requesting user's annotations")
    start = TimeFilter(field_name="entry_time", lookup_expr="gte", help_text="entry_time >= start")
    end = TimeFilter(field_name="entry_time", lookup_expr="lt", help_text="entry_time < end")

    class Meta:
        model = Annotation
        fields = ["instrument", "symbol", "venue", "owner", "mine", "side", "start", "end"]

    def _mine(self, queryset, name, value):
        user = self.request.user if self.request is not None else None
        return queryset.filter(owner=user) if value and user is not None else queryset


class BacktestFilter(FilterSet):
    created_by = IdFilter(field_name="created_by_id", help_text="Starting user's id")

    class Meta:
        model = BacktestRun
        fields = ["source", "status", "created_by"]


class AuditLogFilter(FilterSet):
    action = filters.CharFilter(help_text="Exact action, e.g. order.submit")
    action_prefix = filters.CharFilter(field_name="action", lookup_expr="startswith", help_text="e.g. kill_switch.")
    user = IdFilter(field_name="user_id", help_text="User id")
    username = filters.CharFilter(lookup_expr="iexact")
    target_type = filters.CharFilter(help_text="app_label.model, e.g. trading.order")
    target_id = filters.CharFilter()
    start = TimeFilter(field_name="created_at", lookup_expr="gte", help_text="created_at >= start")
    end = TimeFilter(field_name="created_at", lookup_expr="lt", help_text="created_at < end")

    class Meta:
        model = AuditLog
        fields = ["action", "action_prefix", "user", "username", "target_type", "target_id", "start", "end"]
