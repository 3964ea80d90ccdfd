"""Trading accounts, orchestrator settings, decisions, orders, fills and positions."""
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from apps.market.models import PRICE, SIZE, Instrument
from apps.predictions.models import Prediction


class TradingAccount(models.Model):
    """A user's account. Paper by default. A live account trades on ``venue`` only when it holds
    credentials (Fernet-encrypted, see ``apps.trading.secrets``) and its owner set ``live_enabled``."""

    class Mode(models.TextChoices):
        PAPER = "paper", "Paper"
        LIVE = "live", "Live"

    class LiveVenue(models.TextChoices):
        BINANCE = "binance", "Binance spot"
        MEXC = "mexc", "MEXC spot"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trading_accounts")
    name = models.CharField(max_length=64)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.PAPER)
    venue = models.CharField(max_length=16, choices=LiveVenue.choices, default=LiveVenue.BINANCE,
                             help_text="Where a live account trades")
    live_enabled = models.BooleanField(default=False, help_text="The owner's explicit opt-in to live orders")
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_secret_encrypted = models.TextField(blank=True, editable=False)
    starting_balance = models.DecimalField(**SIZE, default=Decimal("10000"), help_text="USD")
    fee_rate = models.DecimalField(max_digits=8, decimal_places=6, default=Decimal("0.001"),
                                   help_text="Taker fee as a fraction of notional (0.001 = 0.1%)")
    maker_fee_rate = models.DecimalField(max_digits=8, decimal_places=6, default=Decimal("0.001"),
                                         help_text="Paper maker fee (resting limit fills)")
    latency_ms = models.PositiveIntegerField(default=50, help_text="Paper: order travel time to the venue (ms)")
    auto_trade = models.BooleanField(default=True, help_text="The orchestrator places orders for it")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="account_unique_owner_name"),
            models.CheckConstraint(condition=Q(live_enabled=False) | Q(mode="live"), name="account_live_enabled_only_live"),
        ]

    def __str__(self) -> str:
        return f"{self.owner}/{self.name} ({self.mode})"

    @property
    def has_credentials(self) -> bool:
        return bool(self.api_key_encrypted and self.api_secret_encrypted)


MARGIN_BPS_MIN, MARGIN_BPS_MAX = -10.0, 50.0  # below 0 acts on a predicted loss (experiments, tests); 50 bps ~ never


class GatingMode(models.TextChoices):
    LEARNED = "learned", "Measured net edge (hold until a model has one)"
    FALLBACK = "fallback", "Measured net edge; calibrated edges equally until one is measured"
    EQUAL = "equal", "Equal weights"
    MANUAL = "manual", "Manual weights"


class OrchestratorConfig(models.Model):
    """Per-instrument decision settings (margin, filters, mixture weights), editable in the admin
    and on the dashboard; the engine re-reads it once per second. The rule and the gating are
    ``ml.orchestrator``'s."""

    instrument = models.OneToOneField(Instrument, on_delete=models.CASCADE, related_name="orchestrator_config")
    margin_bps = models.FloatField(
        default=2.0, validators=[MinValueValidator(MARGIN_BPS_MIN), MaxValueValidator(MARGIN_BPS_MAX)],
        help_text="Act only when the mixture's expected net edge (after the round-trip cost) exceeds "
                  f"this many basis points, in [{MARGIN_BPS_MIN:g}, {MARGIN_BPS_MAX:g}]")
    order_notional = models.DecimalField(**PRICE, default=Decimal("1000"), help_text="USD per order")
    cooldown_seconds = models.PositiveIntegerField(default=30, help_text="Minimum time between orders")
    max_spread_bps = models.FloatField(null=True, blank=True, default=5.0,
                                       help_text="Hold when the spread exceeds this many basis points of mid (blank: off)")
    max_volatility = models.FloatField(null=True, blank=True, default=0.002,
                                       help_text="Hold when the std of 1 s log returns over 60 s exceeds this (blank: off)")
    min_completeness = models.FloatField(null=True, blank=True, default=None,
                                         help_text="Hold below this input completeness (blank: off)")
    gating_mode = models.CharField(max_length=8, choices=GatingMode.choices, default=GatingMode.LEARNED)
    manual_weights = models.JSONField(default=dict, blank=True, help_text='Model weights in manual mode, {"cnn": 2, "dqn": 1}')
    gating_window = models.PositiveIntegerField(default=600, help_text="Scored calls per model in its net edge")
    gating_min_scored = models.PositiveIntegerField(default=120, help_text="Weight 0 until a model has this many")
    gating_z = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)],
                                 help_text="A model needs mean net edge - z x standard error > 0 (>= 0)")
    score_horizon_seconds = models.PositiveIntegerField(
        default=60, help_text="A call of a model that gives no horizon is scored this long after")
    trading_enabled = models.BooleanField(
        default=True, help_text="Off: new entries on this instrument are held (decisions are still recorded; "
                                "stops and exits still run)")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(margin_bps__gte=MARGIN_BPS_MIN, margin_bps__lte=MARGIN_BPS_MAX),
                                   name="margin_bps_range"),
            models.CheckConstraint(condition=Q(gating_z__gte=0), name="gating_z_non_negative"),
        ]

    def clean(self) -> None:
        """``manual_weights``: a JSON object of known model names (ml.models.specs) to finite
        non-negative numbers. Raises ValidationError naming the field."""
        import math

        from django.core.exceptions import ValidationError

        from ml.models.specs import MODEL_NAMES

        weights = self.manual_weights
        if not isinstance(weights, dict):
            raise ValidationError({"manual_weights": 'expected an object such as {"cnn": 2, "dqn": 1}'})
        unknown = sorted(set(weights) - set(MODEL_NAMES))
        if unknown:
            raise ValidationError({"manual_weights": f"unknown model {', '.join(unknown)}; one of {', '.join(MODEL_NAMES)}"})
        for name, value in weights.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValidationError({"manual_weights": f"{name}: a weight must be a finite number >= 0, got {value!r}"})


class Side(models.TextChoices):
    BUY = "BUY"
    SELL = "SELL"


class Decision(models.Model):
    """What the orchestrator decided for one account, instrument and exchange second."""

    class Action(models.TextChoices):
        BUY = "BUY"
        SELL = "SELL"
        HOLD = "HOLD"

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="decisions")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE)
    ts_event = models.DateTimeField()
    action = models.CharField(max_length=4, choices=Action.choices)
    confidence = models.FloatField(help_text="The mixture's expected net edge of the better side, bps (0: no model had weight)")
    threshold = models.FloatField(help_text="The margin in bps the edge had to exceed")
    prediction = models.ForeignKey(Prediction, on_delete=models.SET_NULL, null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    filter = models.CharField(max_length=16, blank=True, help_text="Market filter that held it, if any")
    inputs = models.JSONField(default=dict, blank=True,
                              help_text="What produced it: model probs and edges, gating weights and why, mixture, "
                                        "conditions, settings, risk")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "instrument", "ts_event"], name="decision_unique_natural_key")
        ]
        ordering = ["-ts_event"]


class Order(models.Model):
    """An order; ``client_order_id`` is unique so a retried submit never doubles."""

    class Status(models.TextChoices):
        NEW = "NEW"
        PARTIALLY_FILLED = "PARTIALLY_FILLED"
        FILLED = "FILLED"
        CANCELED = "CANCELED"
        REJECTED = "REJECTED"
        EXPIRED = "EXPIRED"

    class Type(models.TextChoices):
        MARKET = "MARKET"
        LIMIT = "LIMIT"

    OPEN = (Status.NEW, Status.PARTIALLY_FILLED)

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="orders")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE)
    decision = models.ForeignKey(Decision, on_delete=models.SET_NULL, null=True, blank=True)
    client_order_id = models.CharField(max_length=64, unique=True)
    venue_order_id = models.CharField(max_length=64, blank=True)
    side = models.CharField(max_length=4, choices=Side.choices)
    order_type = models.CharField(max_length=8, choices=Type.choices, default=Type.MARKET)
    purpose = models.CharField(max_length=16, default="entry", help_text="entry | exit | stop_loss | take_profit | ...")
    price = models.DecimalField(**PRICE, null=True, blank=True, help_text="Limit price (USD); empty for MARKET")
    quantity = models.DecimalField(**SIZE)
    filled_quantity = models.DecimalField(**SIZE, default=Decimal(0))
    average_price = models.DecimalField(**PRICE, null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    reject_reason = models.CharField(max_length=255, blank=True)
    ts_event = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-ts_event"]
        indexes = [models.Index(fields=["account", "status"], name="order_account_status")]

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN


class OrderEvent(models.Model):
    """One transition of an order's lifecycle (NEW -> PARTIALLY_FILLED -> FILLED / CANCELED /
    REJECTED / EXPIRED), stored in order (``seq``) with the filled quantity after it."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Order.Status.choices)
    filled_quantity = models.DecimalField(**SIZE, default=Decimal(0))
    detail = models.CharField(max_length=255, blank=True)
    ts_event = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "seq"], name="orderevent_unique_order_seq")]
        ordering = ["order", "seq"]


class Fill(models.Model):
    """One execution of an order at one price level; fee in quote currency (USD)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fills")
    seq = models.PositiveIntegerField()
    price = models.DecimalField(**PRICE)
    quantity = models.DecimalField(**SIZE)
    fee = models.DecimalField(**SIZE)
    liquidity = models.CharField(max_length=5, default="taker", help_text="taker | maker")
    ts_event = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "seq"], name="fill_unique_order_seq")]
        ordering = ["order", "seq"]


class Position(models.Model):
    """Net position of an account in an instrument (signed base units; negative = short)."""

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="positions")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE)
    quantity = models.DecimalField(**SIZE, default=Decimal(0))
    average_price = models.DecimalField(**PRICE, default=Decimal(0))
    realized_pnl = models.DecimalField(**SIZE, default=Decimal(0), help_text="USD, after fees")
    fees_paid = models.DecimalField(**SIZE, default=Decimal(0), help_text="USD")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "instrument"], name="position_unique")]
