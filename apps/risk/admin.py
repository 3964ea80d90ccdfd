from django.contrib import admin

from apps.risk.models import RiskEvent, RiskLimit


@admin.register(RiskLimit)
class RiskLimitAdmin(admin.ModelAdmin):
    list_display = ("account", "instrument", "max_position", "max_order_notional")
    list_editable = ("max_position", "max_order_notional")
    list_filter = ("instrument",)


@admin.register(RiskEvent)
class RiskEventAdmin(admin.ModelAdmin):
    list_display = ("account", "instrument", "kind", "rule", "reason", "ts_event")
    list_filter = ("kind", "rule", "instrument")
