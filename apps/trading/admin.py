from django.contrib import admin

from apps.trading.models import Decision, Fill, OrchestratorConfig, Order, Position, TradingAccount


@admin.register(TradingAccount)
class TradingAccountAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "mode", "starting_balance", "fee_rate", "auto_trade")
    list_filter = ("mode", "auto_trade")
    search_fields = ("name", "owner__username")


@admin.register(OrchestratorConfig)
class OrchestratorConfigAdmin(admin.ModelAdmin):
    list_display = ("instrument", "buy_threshold", "sell_threshold", "order_notional", "cooldown_seconds")
    list_editable = ("buy_threshold", "sell_threshold", "order_notional", "cooldown_seconds")


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = ("account", "instrument", "ts_event", "action", "confidence", "threshold", "reason")
    list_filter = ("action", "instrument", "account")
    date_hierarchy = "ts_event"


class FillInline(admin.TabularInline):
    model = Fill
    extra = 0
    readonly_fields = ("seq", "price", "quantity", "fee", "ts_event")


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("client_order_id", "account", "instrument", "side", "quantity", "average_price", "status", "ts_event")
    list_filter = ("status", "side", "instrument", "account")
    search_fields = ("client_order_id",)
    inlines = [FillInline]


@admin.register(Position)
class PositionAdmin(admin.ModelAdmin):
    list_display = ("account", "instrument", "quantity", "average_price", "realized_pnl", "fees_paid", "updated_at")
    list_filter = ("instrument",)
