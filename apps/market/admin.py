from django.contrib import admin, messages

from apps.market.models import Candle, CobFrame, DataGap, Instrument, MarketStream, RetentionPolicy
from apps.market.streams import stream_request


def _request_streams(modeladmin, request, instruments, desired: str) -> None:
    try:
        streams = stream_request(instruments=instruments, desired=desired)
    except ValueError as exc:
        modeladmin.message_user(request, str(exc), messages.ERROR)
        return
    names = ", ".join(str(s.instrument) for s in streams)
    modeladmin.message_user(request, f"{desired}: {names}", messages.SUCCESS)


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ("symbol", "venue", "tick_size", "bucket_width", "bucket_count", "is_traded", "enabled",
                    "stream_depth", "stream_trades", "stream_candles")
    list_filter = ("venue", "is_traded", "enabled")
    list_editable = ("bucket_width", "bucket_count", "is_traded", "enabled")
    search_fields = ("symbol",)
    actions = ("start_streams", "stop_streams")

    @admin.action(description="Start the live stream of the selected instruments")
    def start_streams(self, request, queryset) -> None:
        _request_streams(self, request, list(queryset), MarketStream.Desired.RUNNING)

    @admin.action(description="Stop the live stream of the selected instruments")
    def stop_streams(self, request, queryset) -> None:
        _request_streams(self, request, list(queryset), MarketStream.Desired.STOPPED)


@admin.register(MarketStream)
class MarketStreamAdmin(admin.ModelAdmin):
    """Stream state: ``desired`` is the user's; the rest is written by the worker holding the lease."""

    list_display = ("instrument", "desired", "status", "worker", "last_message_at", "messages", "reconnects", "gaps",
                    "rejected", "error")
    list_filter = ("desired", "status", "instrument__venue")
    search_fields = ("instrument__symbol",)
    list_select_related = ("instrument",)
    readonly_fields = ("status", "worker", "connected_at", "last_message_at", "messages", "reconnects", "gaps",
                       "rejected", "error", "updated_at")
    actions = ("start_streams", "stop_streams")

    @admin.action(description="Start the selected streams")
    def start_streams(self, request, queryset) -> None:
        _request_streams(self, request, [s.instrument for s in queryset.select_related("instrument")],
                         MarketStream.Desired.RUNNING)

    @admin.action(description="Stop the selected streams")
    def stop_streams(self, request, queryset) -> None:
        _request_streams(self, request, [s.instrument for s in queryset.select_related("instrument")],
                         MarketStream.Desired.STOPPED)

    def save_model(self, request, obj, form, change) -> None:
        """Editing ``desired`` in the form goes through the same service as the actions."""
        super().save_model(request, obj, form, change)
        if "desired" in form.changed_data:
            _request_streams(self, request, [obj.instrument], obj.desired)


@admin.register(Candle)
class CandleAdmin(admin.ModelAdmin):
    list_display = ("instrument", "timeframe", "open_time", "open", "high", "low", "close", "volume", "trade_count")
    list_filter = ("timeframe", "instrument")
    search_fields = ("instrument__symbol",)
    date_hierarchy = "open_time"
    list_select_related = ("instrument",)
    show_full_result_count = False


@admin.register(CobFrame)
class CobFrameAdmin(admin.ModelAdmin):
    list_display = ("instrument", "ts", "mid", "best_bid", "best_ask", "imbalance_5", "ma_5s", "ma_60s")
    list_filter = ("instrument",)
    search_fields = ("instrument__symbol",)
    # Computed by the order-book pipeline from the venue's stream: inspected here, never edited.
    readonly_fields = ("instrument", "ts", "mid", "best_bid", "best_ask", "bucket_width", "first_bucket_price", "bid_usd",
                       "ask_usd", "imbalance", "imbalance_5", "ma_1s", "ma_5s", "ma_15s", "ma_60s")
    date_hierarchy = "ts"
    list_select_related = ("instrument",)
    show_full_result_count = False


@admin.register(DataGap)
class DataGapAdmin(admin.ModelAdmin):
    list_display = ("instrument", "cause", "ts_event", "ts_end", "backfilled", "detail", "created_at")
    list_filter = ("cause", "backfilled", "instrument")
    search_fields = ("detail", "instrument__symbol")
    date_hierarchy = "ts_event"
    readonly_fields = ("created_at",)


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "cob_frame_days", "updated_at")
    list_editable = ("cob_frame_days",)
    list_display_links = ("__str__",)
    readonly_fields = ("updated_at",)

    def has_add_permission(self, request) -> bool:  # one row: selectors.retention_policy_get creates it
        return not RetentionPolicy.objects.exists()
