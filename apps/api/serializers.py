"""Serializers of the v1 API. Prices and sizes are Decimal strings (USD / base units); times ISO 8601
UTC. Nothing secret or binary is ever serialized (no prediction input package, no file paths)."""
from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from apps.market.models import Candle, CobFrame, DataGap, Instrument, MarketStream
from apps.predictions.models import ModelCheckpoint, Prediction, TrainingRun

POSITIVE = Decimal("0.00000001")


class InstrumentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Instrument
        fields = ["id", "venue", "symbol", "base", "quote", "tick_size", "bucket_width", "bucket_count",
                  "is_traded", "enabled", "stream_depth", "stream_trades", "stream_candles"]
        extra_kwargs = {"tick_size": {"min_value": POSITIVE}, "bucket_width": {"min_value": POSITIVE},
                        "bucket_count": {"min_value": 1, "max_value": 500}}


CANDLE_COLUMNS = ("instrument_id", "timeframe", "open_time", "open", "high", "low", "close", "volume", "quote_volume",
                  "trade_count")


class CandleSerializer(serializers.ModelSerializer):
    """A candle; read-only. ``to_representation`` writes the row directly (the same output as the
    declared fields, about ten times faster: the candles list is the API's hot path) from a Candle
    or from a ``.values(*CANDLE_COLUMNS)`` dict (the list's lean path: no model instances)."""

    class Meta:
        model = Candle
        fields = ["instrument", "timeframe", "open_time", "open", "high", "low", "close", "volume", "quote_volume",
                  "trade_count"]
        read_only_fields = fields

    def to_representation(self, c: Candle | dict) -> dict:
        if not isinstance(c, dict):
            c = {name: getattr(c, name) for name in CANDLE_COLUMNS}
        return {"instrument": c["instrument_id"], "timeframe": c["timeframe"], "open_time": _iso(c["open_time"]),
                "open": f"{c['open']:f}", "high": f"{c['high']:f}", "low": f"{c['low']:f}", "close": f"{c['close']:f}",
                "volume": f"{c['volume']:f}", "quote_volume": f"{c['quote_volume']:f}", "trade_count": c["trade_count"]}


def _iso(value) -> str:
    """DRF's DateTimeField output for an aware UTC datetime (``...Z``)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class CobFrameSerializer(serializers.ModelSerializer):
    """``bid_usd``/``ask_usd``/``imbalance``: ``2 * bucket_count + 1`` floats, bucket ``i`` starting at
    ``first_bucket_price + i * bucket_width`` (USD)."""

    class Meta:
        model = CobFrame
        fields = ["instrument", "ts", "mid", "best_bid", "best_ask", "bucket_width", "first_bucket_price", "bid_usd",
                  "ask_usd", "imbalance", "imbalance_5", "ma_1s", "ma_5s", "ma_15s", "ma_60s"]


class HeatmapQuerySerializer(serializers.Serializer):
    symbol = serializers.CharField(default="ETHUSDT", max_length=32)
    venue = serializers.ChoiceField(choices=Instrument.Venue.choices, default=Instrument.Venue.BINANCE)
    seconds = serializers.IntegerField(default=300, min_value=1, max_value=3600, help_text="Window, seconds")
    buckets = serializers.IntegerField(default=10, min_value=0, max_value=50, help_text="Buckets each side of mid")


class HeatmapSerializer(serializers.Serializer):
    """Time x price matrices of the newest stored frames (ml.market.heatmap.heatmap_matrix);
    ``null`` where unknown."""

    symbol = serializers.CharField()
    bucket_width = serializers.FloatField(help_text="USD")
    ts = serializers.ListField(child=serializers.IntegerField(), help_text="(T,) ms since epoch")
    price = serializers.ListField(child=serializers.FloatField(), help_text="(B,) lower bucket edges, USD")
    imbalance = serializers.ListField(child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
                                      help_text="(T, B) in [-1, 1]")
    volume = serializers.ListField(child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
                                   help_text="(T, B) USD")
    spread = serializers.ListField(child=serializers.FloatField(allow_null=True), help_text="(T,) USD")
    mid = serializers.ListField(child=serializers.FloatField(allow_null=True), help_text="(T,) USD")


class DataGapSerializer(serializers.ModelSerializer):
    class Meta:
        model = DataGap
        fields = ["id", "instrument", "cause", "ts_event", "ts_end", "detail", "backfilled", "created_at"]


class MarketStreamSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="instrument.symbol", read_only=True)
    venue = serializers.CharField(source="instrument.venue", read_only=True)

    class Meta:
        model = MarketStream
        fields = ["instrument", "symbol", "venue", "desired", "status", "worker", "connected_at", "last_message_at",
                  "messages", "reconnects", "gaps", "rejected", "error", "updated_at"]


class PredictionSerializer(serializers.ModelSerializer):
    """One inference attempt (never its binary ``input_package``)."""

    class Meta:
        model = Prediction
        fields = ["id", "instrument", "model_name", "checkpoint", "shadow", "ts_event", "status", "reason", "action", "prob_buy",
                  "prob_sell", "prob_hold", "confidence", "completeness", "output", "created_at"]


class TrainingRunSerializer(serializers.ModelSerializer):
    """A training run; ``progress`` is the model's last reported progress (cache) while it is this
    run's: {state, kind, run, epoch, total, loss, metric, fraction, message, started_at} or null."""

    progress = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = ["id", "model_name", "kind", "state", "reason", "cases_needed", "requested_by", "metric_name",
                  "candidate_metric", "active_metric", "n_train", "n_val", "checkpoint", "base_checkpoint", "detail",
                  "started_at", "finished_at", "progress"]
        read_only_fields = [f for f in fields if f not in ("model_name", "kind")]
        extra_kwargs = {"kind": {"required": False}}

    def get_progress(self, run: TrainingRun) -> dict | None:
        from apps.predictions.learning import training_progress_get

        progress = training_progress_get(model_name=run.model_name)
        return progress if progress and progress.get("run") == run.pk else None


class CheckpointSerializer(serializers.ModelSerializer):
    """A registered checkpoint (not its path on the server)."""

    class Meta:
        model = ModelCheckpoint
        fields = ["id", "model_name", "version", "sha256", "config", "metrics", "validation_metric", "net_edge_bps",
                  "state", "evidence", "replaced", "data_start", "data_end", "is_active", "pinned", "load_error",
                  "created_at"]
