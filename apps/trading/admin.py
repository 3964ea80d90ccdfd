from django import forms
from django.contrib import admin, messages

from apps.trading.models import Decision, Fill, OrchestratorConfig, Order, OrderEvent, Position, TradingAccount
from apps.trading.secrets import SecretsKeyMissing
from apps.trading.services import account_set_credentials


class TradingAccountForm(forms.ModelForm):
    """API key and secret are write-only: never rendered back, stored Fernet-encrypted."""

    api_key = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                              help_text="Leave blank to keep the stored key. Never shown again.")
    api_secret = forms.CharField(required=False, widget=forms.PasswordInput(render_value=False),
                                 help_text="Leave blank to keep the stored secret. Never shown again.")
    clear_credentials = forms.BooleanField(required=False)

    class Meta:
        model = TradingAccount
        fields = ("owner", "name", "mode", "venue", "live_enabled", "starting_balance", "fee_rate", "maker_fee_rate",
                  "latency_ms", "auto_trade")

    def clean(self) -> dict:
        data = super().clean()
        if bool(data.get("api_key")) != bool(data.get("api_secret")):
            raise forms.ValidationError("Give both the API key and the secret, or neither.")
        if data.get("live_enabled") and data.get("mode") != TradingAccount.Mode.LIVE:
            self.add_error("live_enabled", "Only a live account can enable live trading.")
        return data


@admin.register(TradingAccount)
class TradingAccountAdmin(admin.ModelAdmin):
    form = TradingAccountForm
    list_display = ("name", "owner", "mode", "venue", "live_enabled", "credentials", "starting_balance", "fee_rate",
                    "auto_trade")
    list_filter = ("mode", "venue", "live_enabled", "auto_trade")
    search_fields = ("name", "owner__username")
    list_select_related = ("owner",)
    # api_key_encrypted / api_secret_encrypted are never shown: not editable on the model, not in the form.
    readonly_fields = ("credentials", "created_at")

    @admin.display(boolean=True)
    def credentials(self, obj: TradingAccount) -> bool:
        return obj.has_credentials

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        data = form.cleaned_data
        try:
            if data.get("clear_credentials"):
                account_set_credentials(account=obj, api_key="", api_secret="")
            elif data.get("api_key"):
                account_set_credentials(account=obj, api_key=data["api_key"], api_secret=data["api_secret"])
        except SecretsKeyMissing as exc:
            self.message_user(request, f"Credentials not stored: {exc}", level=messages.ERROR)


@admin.register(OrchestratorConfig)
class OrchestratorConfigAdmin(admin.ModelAdmin):
    list_display = ("instrument", "trading_enabled", "margin_bps", "order_notional", "cooldown_seconds",
                    "gating_mode", "max_spread_bps", "max_volatility", "min_completeness")
    list_filter = ("trading_enabled", "gating_mode")
    search_fields = ("instrument__symbol",)
    readonly_fields = ("updated_at",)
    list_editable = ("margin_bps", "order_notional", "cooldown_seconds", "gating_mode",
                     "max_spread_bps", "max_volatility", "min_completeness")
    fieldsets = (
        ("Decision", {"fields": ("instrument", "trading_enabled", "margin_bps", "cooldown_seconds",
                                 "order_notional", "updated_at")}),
        ("Market filters", {"fields": ("max_spread_bps", "max_volatility", "min_completeness")}),
        ("Mixture of experts", {"fields": ("gating_mode", "manual_weights", "gating_window", "gating_min_scored",
                                           "gating_z", "score_horizon_seconds")}),
    )


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = ("account", "instrument", "ts_event", "action", "confidence", "threshold", "filter", "reason")
    list_filter = ("action", "filter", "instrument", "account")
    search_fields = ("reason", "account__name")
    date_hierarchy = "ts_event"
    readonly_fields = ("account", "instrument", "ts_event", "action", "confidence", "threshold", "prediction", "reason",
                       "filter", "inputs")


class FillInline(admin.TabularInline):
    model = Fill
    extra = 0
    readonly_fields = ("seq", "price", "quantity", "fee", "liquidity", "ts_event")


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    extra = 0
    readonly_fields = ("seq", "status", "filled_quantity", "detail", "ts_event")


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("client_order_id", "account", "instrument", "side", "order_type", "purpose", "quantity",
                    "filled_quantity", "average_price", "status", "reject_reason", "ts_event")
    list_filter = ("status", "side", "order_type", "purpose", "instrument", "account")
    search_fields = ("client_order_id", "venue_order_id", "account__name", "reject_reason")
    date_hierarchy = "ts_event"
    list_select_related = ("account", "instrument")
    # Filled by the execution client and the venue: inspected here, never edited by hand.
    readonly_fields = ("client_order_id", "venue_order_id", "filled_quantity", "average_price", "status", "reject_reason",
                       "ts_event", "created_at", "updated_at")
    inlines = [OrderEventInline, FillInline]


@admin.register(Position)
class PositionAdmin(admin.ModelAdmin):
    list_display = ("account", "instrument", "quantity", "average_price", "realized_pnl", "fees_paid", "updated_at")
    list_filter = ("instrument", "account")
    search_fields = ("account__name", "account__owner__username", "instrument__symbol")
    readonly_fields = ("quantity", "average_price", "realized_pnl", "fees_paid", "updated_at")


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by the execution path: listed and searchable, never added, changed or deleted."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Fill)
class FillAdmin(_ReadOnlyAdmin):
    list_display = ("order", "seq", "price", "quantity", "fee", "liquidity", "ts_event")
    list_filter = ("liquidity", "order__instrument", "order__account")
    search_fields = ("order__client_order_id", "order__venue_order_id")
    date_hierarchy = "ts_event"
    list_select_related = ("order",)


@admin.register(OrderEvent)
class OrderEventAdmin(_ReadOnlyAdmin):
    list_display = ("order", "seq", "status", "filled_quantity", "detail", "ts_event")
    list_filter = ("status", "order__instrument")
    search_fields = ("order__client_order_id", "detail")
    date_hierarchy = "ts_event"
    list_select_related = ("order",)
