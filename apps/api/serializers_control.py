"""Serializers of the control actions (``apps.trading.controls``) and of the audit log.

Request bodies name one target (instrument, model or account) and what to do; ranges here repeat
the model's checks so a bad value is a 400 naming the field before anything is called."""
from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from apps.accounts.models import AuditLog
from apps.accounts.permissions import request_role
from apps.accounts.roles import ADMIN
from apps.market.models import Instrument
from apps.predictions.models import ModelSetting
from apps.trading.models import MARGIN_BPS_MAX, MARGIN_BPS_MIN, GatingMode, OrchestratorConfig, TradingAccount


class InstrumentSwitchSerializer(serializers.Serializer):
    """Start (``on`` true) or stop (false) something of one instrument."""

    instrument = serializers.PrimaryKeyRelatedField(queryset=Instrument.objects.all(), help_text="Instrument id")
    on = serializers.BooleanField(help_text="true: start / allow; false: stop / hold")


class ModelSwitchSerializer(serializers.Serializer):
    """``model_name``: a model family of ``ml.models.specs.MODEL_NAMES`` (cnn, dqn, transformer); an
    unknown one is a 400 naming the field (checked by ``control_model``, so the web process need not
    import torch to list them)."""

    model_name = serializers.CharField(max_length=64, help_text="e.g. cnn, dqn, transformer")
    on = serializers.BooleanField(help_text="true: enable the model; false: disable it")


class OwnAccountField(serializers.PrimaryKeyRelatedField):
    """A trading account id looked up among the requesting user's own accounts (admins: all), so
    another user's account answers exactly as a nonexistent one (400 "does not exist"): the answer
    reveals nothing about other users' accounts. Needs ``context={"request": request}``."""

    def get_queryset(self):
        user = self.context["request"].user
        queryset = TradingAccount.objects.all()
        return queryset if request_role(user) == ADMIN else queryset.filter(owner_id=user.pk)


class KillSwitchSerializer(serializers.Serializer):
    account = OwnAccountField(queryset=TradingAccount.objects.all(), help_text="Trading account id (your own; admins: any)")
    on = serializers.BooleanField(help_text="true: halt new orders of the account; false: release")


class OrchestratorChangeSerializer(serializers.Serializer):
    """Live orchestrator settings of one instrument; give at least one setting besides ``instrument``."""

    instrument = serializers.PrimaryKeyRelatedField(queryset=Instrument.objects.all(), help_text="Instrument id")
    margin_bps = serializers.FloatField(required=False, min_value=MARGIN_BPS_MIN, max_value=MARGIN_BPS_MAX,
                                        help_text="bps the mixture's expected net edge must exceed to act")
    cooldown_seconds = serializers.IntegerField(required=False, min_value=0, max_value=86_400, help_text="s")
    order_notional = serializers.DecimalField(required=False, max_digits=20, decimal_places=8,
                                              min_value=Decimal("0.00000001"), help_text="USD per order")
    max_spread_bps = serializers.FloatField(required=False, allow_null=True, min_value=0.0, max_value=10_000.0,
                                            help_text="basis points of mid; null: off")
    max_volatility = serializers.FloatField(required=False, allow_null=True, min_value=0.0, max_value=1.0,
                                            help_text="std of 1 s log returns over 60 s; null: off")
    min_completeness = serializers.FloatField(required=False, allow_null=True, min_value=0.0, max_value=1.0,
                                              help_text="null: off")
    gating_mode = serializers.ChoiceField(required=False, choices=GatingMode.choices)
    manual_weights = serializers.DictField(required=False, child=serializers.FloatField(min_value=0.0, max_value=1e6),
                                           help_text='Model weights in manual mode, {"cnn": 2, "dqn": 1}')
    trading_enabled = serializers.BooleanField(required=False)

    def validate(self, data: dict) -> dict:
        if len(data) < 2:
            raise serializers.ValidationError({"non_field_errors": ["give at least one setting to change"]})
        return data


class OrchestratorConfigSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrchestratorConfig
        fields = ["instrument", "margin_bps", "cooldown_seconds", "order_notional",
                  "max_spread_bps", "max_volatility", "min_completeness", "gating_mode", "manual_weights",
                  "trading_enabled", "updated_at"]
        read_only_fields = fields


class ModelSettingSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelSetting
        fields = ["model_name", "enabled"]
        read_only_fields = fields


class StreamStateSerializer(serializers.Serializer):
    instrument = serializers.IntegerField(source="instrument_id")
    desired = serializers.CharField()
    status = serializers.CharField()


class AuditLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditLog
        fields = ["id", "created_at", "user", "username", "action", "target_type", "target_id", "payload", "ip"]
        read_only_fields = fields
