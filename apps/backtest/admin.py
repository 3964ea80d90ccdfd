from django.contrib import admin

from apps.backtest.models import BacktestRun


@admin.register(BacktestRun)
class BacktestRunAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "source", "status", "progress", "order_log_sha256", "created_by", "created_at")
    list_filter = ("source", "status")
    readonly_fields = ("summary", "order_log_sha256", "account", "progress", "progress_detail", "error", "finished_at")
    exclude = ("series",)  # up to one row per second: shown as a plot on /backtests/<id>/, not here
