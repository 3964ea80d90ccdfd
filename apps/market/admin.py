from django.contrib import admin

from apps.market.models import Candle, CobFrame, DataGap, Instrument, RetentionPolicy


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ("symbol", "venue", "tick_size", "bucket_width", "bucket_count", "is_traded", "enabled")
    list_filter = ("venue", "is_traded", "enabled")
    list_editable = ("bucket_width", "bucket_count", "is_traded", "enabled")
    search_fields = ("symbol",)


@admin.register(Candle)
class CandleAdmin(admin.ModelAdmin):
    list_display = ("instrument", "timeframe", "open_time", "open", "high", "low", "close", "volume", "trade_count")
    list_filter = ("timeframe", "instrument")
    date_hierarchy = "open_time"
    list_select_related = ("instrument",)
    show_full_result_count = False


@admin.register(CobFrame)
class CobFrameAdmin(admin.ModelAdmin):
    list_display = ("instrument", "ts", "mid", "best_bid", "best_ask", "imbalance_5", "ma_5s", "ma_60s")
    list_filter = ("instrument",)
    date_hierarchy = "ts"
    list_select_related = ("instrument",)
    show_full_result_count = False


@admin.register(DataGap)
class DataGapAdmin(admin.ModelAdmin):
    list_display = ("instrument", "cause", "ts_event", "detail", "created_at")
    list_filter = ("cause", "instrument")


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "cob_frame_days", "updated_at")
    list_editable = ("cob_frame_days",)
    list_display_links = ("__str__",)

    def has_add_permission(self, request) -> bool:  # one row: selectors.retention_policy_get creates it
        return not RetentionPolicy.objects.exists()
