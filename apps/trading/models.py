"""Trading accounts, orchestrator settings, decisions, orders, fills and positions."""
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.market.models import PRICE, SIZE, Instrument
from apps.predictions.models import Prediction


class TradingAccount(models.Model):
    """A user's account. Paper by default; live needs credentials and an explicit opt-in (later)."""

    class Mode(models.TextChoices):
        PAPER = "paper", "Paper"
        LIVE = "live", "Live"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trading_accounts")
    name = models.CharField(max_length=64)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.PAPER)
    starting_balance = models.DecimalField(**SIZE, default=Decimal("10000"), help_text="USD")
    fee_rate = models.DecimalField(max_digits=8, decimal_places=6, default=Decimal("0.001"),
                                   help_text="Taker fee as a fraction of notional (0.001 = 0.1%)")
    auto_trade = models.BooleanField(default=True, help_text="The orchestrator places orders for it")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="account_unique_owner_name"),
            models.CheckConstraint(condition=Q(mode="paper"), name="account_paper_only_until_live_client"),
        ]

    def __str__(self) -> str:
        return f"{self.owner}/{self.name} ({self.mode})"


class OrchestratorConfig(models.Model):
    """Per-instrument decision settings, editable in the admin; read at every decision."""

    instrument = models.OneToOneField(Instrument, on_delete=models.CASCADE, related_name="orchestrator_config")
    buy_threshold = models.FloatField(default=0.34, help_text="Minimum P(BUY) to buy, in [0, 1]")
    sell_threshold = models.FloatField(default=0.34, help_text="Minimum P(SELL) to sell, in [0, 1]")
    order_notional = models.DecimalField(**PRICE, default=Decimal("1000"), help_text="USD per order")
    cooldown_seconds = models.PositiveIntegerField(default=30, help_text="Minimum time between orders")

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(buy_threshold__gte=0, buy_threshold__lte=1), name="buy_threshold_unit"),
            models.CheckConstraint(condition=Q(sell_threshold__gte=0, sell_threshold__lte=1), name="sell_threshold_unit"),
        ]


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
    confidence = models.FloatField()
    threshold = models.FloatField()
    prediction = models.ForeignKey(Prediction, on_delete=models.SET_NULL, null=True, blank=True)
    reason = models.CharField(max_length=255, blank=True)

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

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="orders")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE)
    decision = models.ForeignKey(Decision, on_delete=models.SET_NULL, null=True, blank=True)
    client_order_id = models.CharField(max_length=64, unique=True)
    side = models.CharField(max_length=4, choices=Side.choices)
    order_type = models.CharField(max_length=8, default="MARKET")
    quantity = models.DecimalField(**SIZE)
    filled_quantity = models.DecimalField(**SIZE, default=Decimal(0))
    average_price = models.DecimalField(**PRICE, null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    reject_reason = models.CharField(max_length=255, blank=True)
    ts_event = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-ts_event"]


class Fill(models.Model):
    """One execution of an order at one price level; fee in quote currency (USD)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fills")
    seq = models.PositiveIntegerField()
    price = models.DecimalField(**PRICE)
    quantity = models.DecimalField(**SIZE)
    fee = models.DecimalField(**SIZE)
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
