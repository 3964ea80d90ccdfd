"""A backtest run: its parameters, progress, report and per-second series (``apps.backtest.services``)."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.trading.models import TradingAccount


class BacktestRun(models.Model):
    """One run of the pipeline over recorded data with its own paper account.

    ``series`` holds the per-second curve as parallel lists {"ts": [ms], "mid": [USD],
    "equity": [USD], "position": [base units]}; ``summary`` the report of ``ml.backtest.report``
    plus the engine's counters; ``order_log_sha256`` the hash of the ordered order log. A
    walk-forward run (``apps.backtest.walk_forward``) stores its folds and aggregate in
    ``summary["walk_forward"]`` and no series."""

    class Source(models.TextChoices):
        ORDERBOOK = "orderbook", "recorded order-book session"
        CANDLES = "candles", "candle-only history"
        WALK_FORWARD = "walk_forward", "walk-forward over the candle history"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"

    name = models.CharField(max_length=128, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.ORDERBOOK)
    start = models.DateTimeField(null=True, blank=True, help_text="First second that trades (UTC); empty: session start")
    end = models.DateTimeField(null=True, blank=True, help_text="Last second processed (UTC); empty: session end")
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    progress = models.FloatField(default=0.0, help_text="Fraction done, 0..1")
    progress_detail = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    summary = models.JSONField(default=dict, blank=True)
    series = models.JSONField(default=dict, blank=True)
    order_log_sha256 = models.CharField(max_length=64, blank=True)
    account = models.ForeignKey(TradingAccount, on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="backtest_runs", help_text="The run's own paper account")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="backtest_runs")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__gte=0) & models.Q(progress__lte=1),
                                   name="backtest_progress_fraction"),
        ]

    def __str__(self) -> str:
        return f"backtest {self.pk} {self.source} {self.status}"
