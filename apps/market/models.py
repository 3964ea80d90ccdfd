"""Market data rows: instruments, candles, COB frames and data gaps."""
from decimal import Decimal

from django.db import models
from django.db.models import F, Q

PRICE = {"max_digits": 20, "decimal_places": 8}
SIZE = {"max_digits": 28, "decimal_places": 8}


class Instrument(models.Model):
    """A tradable pair on one venue, with the COB bucket settings used for it."""

    class Venue(models.TextChoices):
        BINANCE = "binance", "Binance spot"
        BINANCE_USDM = "binanceusdm", "Binance USD-M futures"

    venue = models.CharField(max_length=32, choices=Venue.choices, default=Venue.BINANCE)
    symbol = models.CharField(max_length=32, help_text="Venue symbol, e.g. ETHUSDT")
    base = models.CharField(max_length=16)
    quote = models.CharField(max_length=16)
    tick_size = models.DecimalField(**PRICE, default=Decimal("0.01"))
    bucket_width = models.DecimalField(
        **PRICE, default=Decimal("1"), help_text="COB bucket width in USD ($1 ETH, $10 BTC)"
    )
    bucket_count = models.PositiveSmallIntegerField(default=20, help_text="Buckets on each side of the mid")
    is_traded = models.BooleanField(default=False, help_text="Models predict and orders are placed on it")
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["venue", "symbol"], name="instrument_unique_venue_symbol"),
            models.CheckConstraint(condition=Q(bucket_width__gt=0), name="instrument_bucket_width_positive"),
        ]
        ordering = ["symbol"]

    def __str__(self) -> str:
        return f"{self.symbol}@{self.venue}"


class Timeframe(models.TextChoices):
    S1 = "1s", "1 second"
    M1 = "1m", "1 minute"
    H1 = "1h", "1 hour"
    D1 = "1d", "1 day"


class Candle(models.Model):
    """OHLCV candle; natural key (instrument, timeframe, open_time). Volume in base units."""

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="candles")
    timeframe = models.CharField(max_length=4, choices=Timeframe.choices)
    open_time = models.DateTimeField()
    open = models.DecimalField(**PRICE)
    high = models.DecimalField(**PRICE)
    low = models.DecimalField(**PRICE)
    close = models.DecimalField(**PRICE)
    volume = models.DecimalField(**SIZE)
    quote_volume = models.DecimalField(**SIZE, default=Decimal(0))
    trade_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["instrument", "timeframe", "open_time"], name="candle_unique_natural_key"
            ),
            models.CheckConstraint(condition=Q(high__gte=F("low")), name="candle_high_gte_low"),
        ]
        indexes = [models.Index(fields=["instrument", "timeframe", "-open_time"])]
        ordering = ["instrument", "timeframe", "open_time"]


class CobFrame(models.Model):
    """One second of the consolidated order book around the mid (see ml.market.events.CobFrame).

    ``bid_usd``/``ask_usd``/``imbalance`` are JSON lists of ``2 * bucket_count + 1`` floats, bucket
    ``i`` starting at ``first_bucket_price + i * bucket_width``.
    """

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="cob_frames")
    ts = models.DateTimeField(help_text="Start of the exchange second (UTC)")
    mid = models.DecimalField(**PRICE)
    best_bid = models.DecimalField(**PRICE)
    best_ask = models.DecimalField(**PRICE)
    bucket_width = models.DecimalField(**PRICE)
    first_bucket_price = models.DecimalField(**PRICE)
    bid_usd = models.JSONField()
    ask_usd = models.JSONField()
    imbalance = models.JSONField()
    imbalance_5 = models.FloatField()
    ma_1s = models.FloatField()
    ma_5s = models.FloatField()
    ma_15s = models.FloatField()
    ma_60s = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["instrument", "ts"], name="cobframe_unique_instrument_ts")]
        indexes = [models.Index(fields=["instrument", "-ts"])]
        ordering = ["instrument", "ts"]


class RetentionPolicy(models.Model):
    """How long market data is kept (one row, edited in the admin; see ``retention_policy_get``).

    ``cob_frame_days``: COB frames older than this many days are deleted by ``cob_frame_prune``
    (0 keeps them for ever).
    """

    cob_frame_days = models.PositiveIntegerField(
        default=7, help_text="Delete COB frames older than this many days (0 = keep for ever)"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "retention policy"

    def __str__(self) -> str:
        return f"COB frames: {self.cob_frame_days or 'forever'} days"


class DataGap(models.Model):
    """A hole in the market data: a broken diff sequence, a missing candle range, ..."""

    class Cause(models.TextChoices):
        SEQUENCE_GAP = "sequence_gap", "Order book sequence gap"
        MISSING_CANDLES = "missing_candles", "Missing candles"

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="data_gaps")
    cause = models.CharField(max_length=32, choices=Cause.choices)
    ts_event = models.DateTimeField()
    detail = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instrument", "cause", "ts_event"], name="datagap_unique")
        ]
        ordering = ["-ts_event"]
