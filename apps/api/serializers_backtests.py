"""Serializers of backtest runs: times ISO 8601 UTC, ``progress`` a fraction 0..1, ``summary`` the
report of ``ml.backtest.report`` (returns as fractions, money in USD). The per-second series is
not serialized (large): ``GET /backtests/{id}/report/`` gives it as CSV."""
from __future__ import annotations

from rest_framework import serializers

from apps.backtest.models import BacktestRun


class BacktestRunSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)

    class Meta:
        model = BacktestRun
        fields = ["id", "name", "source", "start", "end", "status", "progress", "progress_detail", "error", "summary",
                  "order_log_sha256", "account", "created_by", "created_at", "finished_at"]
        read_only_fields = fields


class BacktestCreateSerializer(serializers.Serializer):
    """A run to enqueue: ``source`` orderbook (the recorded order-book session) or candles (stored
    1m/1h/1d candles); optional ``start``/``end`` (UTC) cut it, ``start < end``. Recording paths are
    not accepted here (no server paths from the API): a run uses the default session."""

    name = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    source = serializers.ChoiceField(choices=BacktestRun.Source.choices, default=BacktestRun.Source.ORDERBOOK)
    start = serializers.DateTimeField(required=False, allow_null=True, default=None)
    end = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate(self, data: dict) -> dict:
        if data["start"] is not None and data["end"] is not None and data["start"] >= data["end"]:
            raise serializers.ValidationError({"end": ["must be after start"]})
        return data
