"""Serializers of trading (accounts, decisions, orders, order events, fills, positions) and risk
(limits, state, events). Prices and money are Decimal strings in USD, sizes in base units, times
ISO 8601 UTC. An account's exchange credentials are never serialized: only ``has_credentials``."""
from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from apps.risk.models import RiskEvent, RiskLimit, RiskState
from apps.trading.models import Decision, Fill, Order, OrderEvent, Position, TradingAccount

ZERO = Decimal(0)
POSITIVE = Decimal("0.00000001")


class TradingAccountSerializer(serializers.ModelSerializer):
    """A trading account; read-only here (credentials: the write-only ``credentials`` action)."""

    owner = serializers.CharField(source="owner.username", read_only=True)
    has_credentials = serializers.BooleanField(read_only=True, help_text="Live API key and secret are stored (never shown)")

    class Meta:
        model = TradingAccount
        fields = ["id", "owner", "name", "mode", "venue", "live_enabled", "has_credentials", "starting_balance",
                  "fee_rate", "maker_fee_rate", "latency_ms", "auto_trade", "created_at"]
        read_only_fields = fields


class CredentialsSerializer(serializers.Serializer):
    """Write-only: the live account's exchange API key and secret (both, or both blank to clear).
    Stored Fernet-encrypted (``apps.trading.secrets``); never returned by any endpoint."""

    api_key = serializers.CharField(write_only=True, allow_blank=True, max_length=256, trim_whitespace=True)
    api_secret = serializers.CharField(write_only=True, allow_blank=True, max_length=256, trim_whitespace=True,
                                       style={"input_type": "password"})

    def validate(self, data: dict) -> dict:
        if bool(data["api_key"]) != bool(data["api_secret"]):
            missing = "api_secret" if data["api_key"] else "api_key"
            raise serializers.ValidationError({missing: ["give both the API key and the secret, or neither"]})
        return data


class DecisionSerializer(serializers.ModelSerializer):
    """What the orchestrator decided for one account, instrument and exchange second, with the
    inputs that produced it (model probabilities, gating weights, conditions, settings)."""

    class Meta:
        model = Decision
        fields = ["id", "account", "instrument", "ts_event", "action", "confidence", "threshold", "prediction", "reason",
                  "filter", "inputs"]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = ["id", "account", "instrument", "decision", "client_order_id", "venue_order_id", "side", "order_type",
                  "purpose", "price", "quantity", "filled_quantity", "average_price", "status", "reject_reason",
                  "ts_event", "created_at", "updated_at"]
        read_only_fields = fields


class OrderEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderEvent
        fields = ["id", "order", "seq", "status", "filled_quantity", "detail", "ts_event", "created_at"]
        read_only_fields = fields


class FillSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="order.account_id", read_only=True)
    side = serializers.CharField(source="order.side", read_only=True)

    class Meta:
        model = Fill
        fields = ["id", "order", "account", "side", "seq", "price", "quantity", "fee", "liquidity", "ts_event"]
        read_only_fields = fields


class PositionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Position
        fields = ["id", "account", "instrument", "quantity", "average_price", "realized_pnl", "fees_paid", "updated_at"]
        read_only_fields = fields


def _fraction(*, allow_null: bool = False, include_zero: bool = False) -> dict:
    """Field kwargs of a fraction in (0, 1] (or [0, 1]); the model stores a float."""
    return {"min_value": 0.0 if include_zero else 1e-9, "max_value": 1.0, "allow_null": allow_null,
            "required": False}


class RiskLimitSerializer(serializers.ModelSerializer):
    """Limits of one account and instrument (``ml.risk`` applies them); the account and instrument
    are fixed. Fractions are of price or equity in (0, 1]; USD and base units are > 0."""

    class Meta:
        model = RiskLimit
        fields = ["id", "account", "instrument", "max_position", "max_order_notional", "max_orders_per_minute",
                  "daily_loss_limit", "max_drawdown", "stop_loss", "take_profit", "trailing_stop", "sizing",
                  "sizing_fraction", "atr_multiple", "kelly_cap", "breaker_max_move", "breaker_max_errors",
                  "breaker_cooldown_seconds"]
        read_only_fields = ["id", "account", "instrument"]
        extra_kwargs = {
            "max_position": {"min_value": POSITIVE}, "max_order_notional": {"min_value": POSITIVE},
            "daily_loss_limit": {"min_value": POSITIVE},
            "max_orders_per_minute": {"min_value": 1, "max_value": 10_000},
            "max_drawdown": _fraction(), "stop_loss": _fraction(allow_null=True),
            "take_profit": _fraction(allow_null=True),
            "trailing_stop": _fraction(allow_null=True),
            "sizing_fraction": _fraction(), "kelly_cap": _fraction(),
            "breaker_max_move": _fraction(),
            "atr_multiple": {"min_value": 0.01, "max_value": 100.0},
            "breaker_max_errors": {"min_value": 1, "max_value": 10_000},
            "breaker_cooldown_seconds": {"min_value": 0, "max_value": 86_400},
        }


class RiskStateSerializer(serializers.ModelSerializer):
    """An account's trading state (ACTIVE / REDUCING / HALTED), kill switch and the risk figures
    of the engine's last cycle (equity in USD; ``metrics``: drawdown, VaR, Sharpe, Sortino)."""

    class Meta:
        model = RiskState
        fields = ["account", "state", "reason", "kill_switch", "kill_switch_by", "kill_switch_at", "equity",
                  "peak_equity", "day_start_equity", "metrics", "as_of", "updated_at"]
        read_only_fields = fields


class RiskEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = RiskEvent
        fields = ["id", "account", "instrument", "order", "kind", "rule", "reason", "ts_event"]
        read_only_fields = fields
