from django.contrib import admin

from apps.backtest.models import BacktestRun


@admin.register(BacktestRun)
class BacktestRunAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "source", "status", "progress", "order_log_sha256", "created_by", "created_at")
    list_filter = ("source", "status", "created_at")
    search_fields = ("name", "order_log_sha256", "created_by__username")
    date_hierarchy = "created_at"
    list_select_related = ("created_by",)
    readonly_fields = ("summary", "order_log_sha256", "account", "progress", "progress_detail", "error", "created_at",
                       "finished_at")
    exclude = ("series",)  # up to one row per second: shown as a plot on /backtests/<id>/, not here
