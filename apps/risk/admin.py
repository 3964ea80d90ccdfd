from django.contrib import admin

from apps.risk.models import RiskEvent, RiskLimit, RiskState
from apps.risk.services import risk_kill_switch_set


@admin.register(RiskLimit)
class RiskLimitAdmin(admin.ModelAdmin):
    list_display = ("account", "instrument", "max_position", "max_order_notional", "max_orders_per_minute",
                    "daily_loss_limit", "max_drawdown", "sizing")
    list_editable = ("max_position", "max_order_notional", "max_orders_per_minute", "daily_loss_limit", "max_drawdown",
                     "sizing")
    list_filter = ("instrument", "sizing")
    search_fields = ("account__name", "account__owner__username", "instrument__symbol")
    fieldsets = (
        ("Limits", {"fields": ("account", "instrument", "max_position", "max_order_notional", "max_orders_per_minute",
                               "daily_loss_limit", "max_drawdown")}),
        ("Stops", {"fields": ("stop_loss", "take_profit", "trailing_stop")}),
        ("Sizing", {"fields": ("sizing", "sizing_fraction", "atr_multiple", "kelly_cap")}),
        ("Circuit breakers", {"fields": ("breaker_max_move", "breaker_max_errors", "breaker_cooldown_seconds")}),
    )


@admin.register(RiskState)
class RiskStateAdmin(admin.ModelAdmin):
    """The kill switch goes through the actions (stored as a RiskEvent); the rest is the engine's."""

    list_display = ("account", "state", "kill_switch", "reason", "equity", "peak_equity", "as_of")
    list_filter = ("state", "kill_switch")
    search_fields = ("account__name", "account__owner__username", "reason")
    readonly_fields = ("account", "state", "reason", "kill_switch", "kill_switch_by", "kill_switch_at", "equity",
                       "peak_equity", "day_start_equity", "metrics", "as_of")
    actions = ("kill_switch_on", "kill_switch_off")

    @admin.action(description="Kill switch ON: halt new orders (exits and cancels still pass)")
    def kill_switch_on(self, request, queryset) -> None:
        for state in queryset.select_related("account"):
            risk_kill_switch_set(account=state.account, on=True, by=request.user.get_username())

    @admin.action(description="Kill switch OFF")
    def kill_switch_off(self, request, queryset) -> None:
        for state in queryset.select_related("account"):
            risk_kill_switch_set(account=state.account, on=False, by=request.user.get_username())


@admin.register(RiskEvent)
class RiskEventAdmin(admin.ModelAdmin):
    list_display = ("account", "instrument", "kind", "rule", "reason", "ts_event")
    list_filter = ("kind", "rule", "instrument")
    search_fields = ("reason", "rule", "account__name")
    date_hierarchy = "ts_event"
    # What the risk engine decided: inspected, never edited.
    readonly_fields = ("account", "instrument", "order", "kind", "rule", "reason", "ts_event")
