"""Risk limits per account and instrument, the account's trading state and kill switch, and the
events (rejections, state changes, breakers, stops) they produce."""
from decimal import Decimal

from django.db import models
from django.db.models import Q

from apps.market.models import PRICE, SIZE, Instrument
from apps.trading.models import Order, TradingAccount


class RiskLimit(models.Model):
    """Limits checked before every order, stops and sizing; editable in the admin (ml.risk has the rules)."""

    class Sizing(models.TextChoices):
        FIXED_NOTIONAL = "fixed_notional", "Fixed notional (orchestrator's order notional)"
        FIXED_FRACTION = "fixed_fraction", "Fixed fraction of equity"
        ATR = "atr", "Volatility (ATR) based"
        KELLY = "kelly", "Capped Kelly"

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="risk_limits")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE)
    max_position = models.DecimalField(**SIZE, default=Decimal("1"), help_text="Max |position| in base units")
    max_order_notional = models.DecimalField(**PRICE, default=Decimal("5000"), help_text="USD per order")
    max_orders_per_minute = models.PositiveIntegerField(default=10)
    daily_loss_limit = models.DecimalField(**PRICE, default=Decimal("500"), help_text="USD; then only exits (REDUCING)")
    max_drawdown = models.FloatField(default=0.2, help_text="Fraction of peak equity; then only exits (REDUCING)")
    stop_loss = models.FloatField(null=True, blank=True, help_text="Fraction of entry price (0.01 = 1%); blank: off")
    take_profit = models.FloatField(null=True, blank=True, help_text="Fraction of entry price; blank: off")
    trailing_stop = models.FloatField(null=True, blank=True, help_text="Fraction below the best price since entry")
    sizing = models.CharField(max_length=16, choices=Sizing.choices, default=Sizing.FIXED_NOTIONAL)
    sizing_fraction = models.FloatField(default=0.1, help_text="Fixed fraction of equity, or risk fraction for ATR")
    atr_multiple = models.FloatField(default=2.0, help_text="ATR sizing: stop distance in ATRs (1m candles, n=14)")
    kelly_cap = models.FloatField(default=0.25, help_text="Kelly sizing: maximum fraction of equity")
    breaker_max_move = models.FloatField(default=0.05, help_text="Circuit breaker: |move| within 60 s (fraction)")
    breaker_max_errors = models.PositiveIntegerField(default=5, help_text="Circuit breaker: venue errors within 60 s")
    breaker_cooldown_seconds = models.PositiveIntegerField(default=300)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "instrument"], name="risklimit_unique"),
            models.CheckConstraint(condition=Q(max_drawdown__gt=0, max_drawdown__lte=1), name="risklimit_drawdown_unit"),
        ]


class RiskState(models.Model):
    """An account's trading state (ACTIVE / REDUCING / HALTED) and kill switch. The engine reads the
    kill switch every decision cycle and writes the state and the risk figures it computed."""

    class State(models.TextChoices):
        ACTIVE = "ACTIVE"
        REDUCING = "REDUCING"
        HALTED = "HALTED"

    account = models.OneToOneField(TradingAccount, on_delete=models.CASCADE, related_name="risk_state")
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    reason = models.CharField(max_length=255, blank=True)
    kill_switch = models.BooleanField(default=False, help_text="Halt every new order; cancels and exits still pass")
    kill_switch_by = models.CharField(max_length=150, blank=True)
    kill_switch_at = models.DateTimeField(null=True, blank=True)
    equity = models.DecimalField(**SIZE, null=True, blank=True, help_text="USD, marked at mid")
    peak_equity = models.DecimalField(**SIZE, null=True, blank=True)
    day_start_equity = models.DecimalField(**SIZE, null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="Drawdown, VaR, Sharpe, Sortino of the session")
    as_of = models.DateTimeField(null=True, blank=True, help_text="Exchange time of the last cycle")
    updated_at = models.DateTimeField(auto_now=True)


class RiskEvent(models.Model):
    """A risk decision worth keeping: every rejected order with its reason, state changes, kill
    switch toggles, circuit breakers, stops, and the desk standing aside because the limits
    leave no room for an order (once per rule until room opens again)."""

    class Kind(models.TextChoices):
        REJECTED = "rejected", "Order rejected"
        STATE = "state", "Trading state changed"
        KILL_SWITCH = "kill_switch", "Kill switch"
        BREAKER = "breaker", "Circuit breaker"
        STOP = "stop", "Stop / take-profit"
        SKIPPED = "skipped", "No room for an order (stood aside)"

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="risk_events")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, null=True, blank=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, null=True, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    rule = models.CharField(max_length=32)
    reason = models.CharField(max_length=255)
    ts_event = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "rule"], name="riskevent_unique_order_rule")]
        ordering = ["-ts_event"]
