"""Trades that users mark by hand: a side, an entry and an exit (time and price), and notes.

They are training cases (ml/training/cases.py): the BaseDataInput at the entry second, target = side.
"""
from django.conf import settings
from django.db import models
from django.db.models import F, Q

from apps.market.models import PRICE, Instrument


class Annotation(models.Model):
    """One hand-marked trade. Times are UTC (aware); prices in quote currency (USD)."""

    class Side(models.TextChoices):
        LONG = "long", "Long"
        SHORT = "short", "Short"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotations")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="annotations")
    side = models.CharField(max_length=5, choices=Side.choices)
    entry_time = models.DateTimeField()
    entry_price = models.DecimalField(**PRICE)
    exit_time = models.DateTimeField()
    exit_price = models.DecimalField(**PRICE)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(exit_time__gt=F("entry_time")), name="annotation_exit_after_entry"),
            models.CheckConstraint(condition=Q(entry_price__gt=0) & Q(exit_price__gt=0),
                                   name="annotation_prices_positive"),
        ]
        indexes = [models.Index(fields=["instrument", "entry_time"])]
        ordering = ["-entry_time"]

    def __str__(self) -> str:
        return f"{self.side} {self.instrument.symbol} {self.entry_time:%Y-%m-%d %H:%M:%S} → {self.exit_time:%H:%M:%S}"

    @property
    def return_fraction(self) -> float:
        """Simple return of the marked trade in its direction (before fees)."""
        r = float(self.exit_price) / float(self.entry_price) - 1.0
        return r if self.side == self.Side.LONG else -r
