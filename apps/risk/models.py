"""Risk limits per account and instrument, and the events (rejections) they produce."""
from decimal import Decimal

from django.db import models

from apps.market.models import PRICE, SIZE, Instrument
from apps.trading.models import Order, TradingAccount


class RiskLimit(models.Model):
    """Limits checked before every order; editable in the admin."""

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="risk_limits")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE)
    max_position = models.DecimalField(**SIZE, default=Decimal("1"), help_text="Max |position| in base units")
    max_order_notional = models.DecimalField(**PRICE, default=Decimal("5000"), help_text="USD per order")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "instrument"], name="risklimit_unique")]


class RiskEvent(models.Model):
    """A risk decision worth keeping: every rejected order, with its reason."""

    class Kind(models.TextChoices):
        REJECTED = "rejected", "Order rejected"

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="risk_events")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, null=True, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    rule = models.CharField(max_length=32)
    reason = models.CharField(max_length=255)
    ts_event = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "rule"], name="riskevent_unique_order_rule")]
        ordering = ["-ts_event"]
