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
        MEXC = "mexc", "MEXC spot"
        BYBIT = "bybit", "Bybit spot"

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
    stream_depth = models.BooleanField(default=True, help_text="Order book diff stream (COB frames)")
    stream_trades = models.BooleanField(default=True, help_text="Trade stream (1s candles)")
    stream_candles = models.BooleanField(
        default=True, help_text="1m/1h/1d candles backfilled through REST on start and after gaps"
    )

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
        DISCONNECT = "disconnect", "Connection lost"
        VENUE_ERROR = "venue_error", "Venue error (HTTP 429/418/5xx, timeout)"

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="data_gaps")
    cause = models.CharField(max_length=32, choices=Cause.choices)
    ts_event = models.DateTimeField(help_text="Start of the hole (venue time)")
    ts_end = models.DateTimeField(null=True, blank=True, help_text="End of the hole, when known")
    detail = models.CharField(max_length=255, blank=True)
    backfilled = models.BooleanField(default=False, help_text="The hole's candles were fetched again through REST")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instrument", "cause", "ts_event"], name="datagap_unique")
        ]
        ordering = ["-ts_event"]


class MarketStream(models.Model):
    """The live market-data stream of one instrument: what the user wants and what it does.

    ``desired`` is set from the admin or the dashboard and survives restarts (an ``ingest`` worker
    that starts resumes every stream whose ``desired`` is RUNNING). ``status`` and the counters are
    written by the worker that holds the stream's lease (one per instrument across the cluster).
    """

    class Desired(models.TextChoices):
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"

    class Status(models.TextChoices):
        IDLE = "idle", "Idle"
        CONNECTING = "connecting", "Connecting"
        LIVE = "live", "Live"
        RECONNECTING = "reconnecting", "Reconnecting"
        STOPPED = "stopped", "Stopped"
        FAILED = "failed", "Failed"

    instrument = models.OneToOneField(Instrument, on_delete=models.CASCADE, related_name="stream")
    desired = models.CharField(max_length=16, choices=Desired.choices, default=Desired.STOPPED)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IDLE)
    worker = models.CharField(max_length=255, blank=True, help_text="Host of the worker holding the lease")
    connected_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True, help_text="Receive time of the last message")
    messages = models.PositiveBigIntegerField(default=0)
    reconnects = models.PositiveIntegerField(default=0)
    gaps = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0, help_text="Malformed or unknown messages, counted and logged")
    error = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["instrument__symbol"]

    def __str__(self) -> str:
        return f"{self.instrument} stream ({self.desired}, {self.status})"
