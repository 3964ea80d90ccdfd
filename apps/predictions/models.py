"""Model registry (checkpoints), its settings, and inference history (predictions)."""
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from apps.market.models import Instrument


class ModelCheckpoint(models.Model):
    """A saved model file with the config, metrics and data range it was trained on.

    ``state``: LIVE (the desk trades on its outputs; ``is_active`` mirrors it, one per model),
    SHADOW (predicts every second, its predictions are stored and scored, it never trades; at most
    one per model; promoted by ``apps.predictions.promotion``) or RETIRED (kept for ranking and
    rollback). ``evidence`` is the last promotion check: {"decision", "n", "mean", "lo", "hi", ...}
    (``apps.predictions.promotion.shadow_evaluate``).
    """

    class State(models.TextChoices):
        LIVE = "live", "Live"
        SHADOW = "shadow", "Shadow"
        RETIRED = "retired", "Retired"

    model_name = models.CharField(max_length=64)
    version = models.CharField(max_length=64)
    path = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    config = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    validation_metric = models.FloatField(null=True, blank=True, help_text="Higher is better")
    net_edge_bps = models.FloatField(
        null=True, blank=True,
        help_text="Out-of-sample mean net PnL per trade, bps after costs (metrics.validation.net_edge_bps_per_trade.mean); "
        "ranks first",
    )
    state = models.CharField(max_length=8, choices=State.choices, default=State.RETIRED)
    evidence = models.JSONField(default=dict, blank=True, help_text="The last shadow promotion check and its outcome")
    replaced = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                 help_text="The live checkpoint this one replaced (the one-click rollback target)")
    data_start = models.DateTimeField(null=True, blank=True)
    data_end = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=False)
    pinned = models.BooleanField(
        default=False, help_text="Rolled back to by an admin: stays live instead of the best-ranked checkpoint"
    )
    load_error = models.TextField(blank=True, help_text="Why the file could not be loaded the last time it was tried")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model_name", "version"], name="checkpoint_unique_name_version"),
            models.UniqueConstraint(
                fields=["model_name"], condition=Q(is_active=True), name="checkpoint_one_active_per_model"
            ),
            models.UniqueConstraint(
                fields=["model_name"], condition=Q(pinned=True), name="checkpoint_one_pinned_per_model"
            ),
            models.UniqueConstraint(
                fields=["model_name"], condition=Q(state="shadow"), name="checkpoint_one_shadow_per_model"
            ),
            models.CheckConstraint(condition=Q(is_active=True, state="live") | (Q(is_active=False) & ~Q(state="live")),
                                   name="checkpoint_active_is_live"),
        ]
        ordering = ["model_name", "-created_at"]

    def __str__(self) -> str:
        return f"{self.model_name}:{self.version}"


class RegistrySettings(models.Model):
    """Admin-editable settings of the registry and the inference history (one row, pk=1)."""

    keep_top_n = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1)],
        help_text="Checkpoints kept per model, best validation metric first; the others are deleted (file and row)",
    )
    history_max_count = models.PositiveIntegerField(
        default=200_000,
        help_text="Predictions kept per instrument and model, newest first (0 = no limit); ~2.3 days at one per second, "
        "~14 KB each with its input package",
    )
    history_max_age_days = models.PositiveIntegerField(
        default=7, help_text="Predictions older than this many days are deleted (0 = no limit)"
    )
    round_trip_cost_bps = models.FloatField(
        default=20.0, validators=[MinValueValidator(0.0)],
        help_text="Cost of one round trip in bps of the notional: fees both ways plus the spread (Binance spot "
        "taker 2 x 10 bps = 20); subtracted from every BUY/SELL call's move when shadows are judged and cases built",
    )
    promotion_min_n = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(2)],
        help_text="Scored seconds a shadow and the live checkpoint must share before the shadow can be promoted",
    )
    promotion_alpha = models.FloatField(
        default=0.05, help_text="Promote when the lower end of the (1 - alpha) interval of the net edge difference is > 0"
    )
    shadow_max_hours = models.PositiveIntegerField(
        default=48, help_text="A shadow not promoted after this many hours is refused (retired)"
    )

    class Meta:
        verbose_name_plural = "registry settings"

    def __str__(self) -> str:
        return f"keep top {self.keep_top_n}, history {self.history_max_count} rows / {self.history_max_age_days} days"


class ModelSetting(models.Model):
    """Per model family (ml.models.specs): whether the engine and the inference task run it."""

    model_name = models.CharField(max_length=64, unique=True)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["model_name"]

    def __str__(self) -> str:
        return f"{self.model_name} ({'enabled' if self.enabled else 'disabled'})"


class Prediction(models.Model):
    """One inference attempt: a ModelOutput, or the reason no inference ran (status=skipped)."""

    class Status(models.TextChoices):
        PREDICTED = "predicted", "Predicted"
        SKIPPED = "skipped", "Skipped"

    class Action(models.TextChoices):
        BUY = "BUY"
        SELL = "SELL"
        HOLD = "HOLD"

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="predictions")
    model_name = models.CharField(max_length=64)
    checkpoint = models.ForeignKey(ModelCheckpoint, on_delete=models.SET_NULL, null=True, blank=True)
    shadow = models.BooleanField(default=False, help_text="Made by a shadow checkpoint: scored, never traded on")
    ts_event = models.DateTimeField(help_text="Exchange second the input closes at")
    status = models.CharField(max_length=16, choices=Status.choices)
    reason = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=4, choices=Action.choices, blank=True)
    prob_buy = models.FloatField(null=True, blank=True)
    prob_sell = models.FloatField(null=True, blank=True)
    prob_hold = models.FloatField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    completeness = models.JSONField(default=dict, help_text="Per component and overall, in [0, 1]")
    output = models.JSONField(
        default=dict, blank=True, help_text="ModelOutput without the hidden vector: version, predicted returns, metadata"
    )
    input_package = models.BinaryField(null=True, blank=True, help_text="zlib-compressed npz of the input")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["instrument", "model_name", "shadow", "ts_event"], name="prediction_unique_natural_key_shadow"
            )
        ]
        indexes = [models.Index(fields=["instrument", "model_name", "-ts_event"])]
        ordering = ["-ts_event"]


class Horizon(models.TextChoices):
    """Outcome horizons (ml.outcomes.HORIZONS_MS)."""

    M1 = "1m", "1 minute"
    M5 = "5m", "5 minutes"
    M15 = "15m", "15 minutes"
    M60 = "60m", "60 minutes"


class PredictionOutcome(models.Model):
    """What happened ``horizon`` after a prediction (definitions in ml/outcomes.py).

    ``instrument``, ``model_name``, ``ts_event`` and ``action`` repeat the prediction's so the
    metrics aggregate without a join. Prices in quote currency (USD), ``realized_return`` a simple
    return (fraction), ``pnl_bps`` bps of the notional after a taker fee in and out.
    """

    prediction = models.ForeignKey(Prediction, on_delete=models.CASCADE, related_name="outcomes")
    horizon = models.CharField(max_length=4, choices=Horizon.choices)
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="prediction_outcomes")
    model_name = models.CharField(max_length=64)
    shadow = models.BooleanField(default=False, help_text="The prediction's: a shadow checkpoint's call")
    ts_event = models.DateTimeField(help_text="The prediction's second (its input closes at ts_event + 1 s)")
    action = models.CharField(max_length=4, choices=Prediction.Action.choices)
    confidence = models.FloatField()
    price_start = models.DecimalField(max_digits=20, decimal_places=8)
    price_end = models.DecimalField(max_digits=20, decimal_places=8)
    realized_return = models.FloatField(help_text="Simple return price_end / price_start - 1")
    label = models.CharField(max_length=4, choices=Prediction.Action.choices,
                             help_text="Realized direction with the CNN's fee band (0.2 %)")
    correct = models.BooleanField()
    pnl_bps = models.FloatField(help_text="PnL of acting on the call, bps after fees (HOLD: 0)")
    brier = models.FloatField(help_text="Multi-class Brier score of the probabilities, in [0, 2]")
    scored_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prediction", "horizon"], name="outcome_unique_prediction_horizon"),
            models.CheckConstraint(condition=Q(price_start__gt=0) & Q(price_end__gt=0), name="outcome_prices_positive"),
        ]
        indexes = [models.Index(fields=["instrument", "model_name", "horizon", "-ts_event"]),
                   models.Index(fields=["-ts_event"], name="outcome_ts_event_desc")]
        ordering = ["-ts_event", "horizon"]

    def __str__(self) -> str:
        return f"{self.model_name}@{self.ts_event:%Y-%m-%d %H:%M:%S} {self.horizon}: {self.action} vs {self.label}"


class ModelAlert(models.Model):
    """A model that regressed or stagnated (rules in apps.predictions.alerts), shown in the dashboard."""

    class Kind(models.TextChoices):
        REGRESSION = "regression", "Regression"
        STAGNATION = "stagnation", "Stagnation"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    model_name = models.CharField(max_length=64)
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, null=True, blank=True)
    horizon = models.CharField(max_length=4, choices=Horizon.choices, blank=True)
    metric = models.CharField(max_length=64, help_text="e.g. accuracy, accuracy_vs_hold, val_macro_f1")
    detail = models.JSONField(default=dict)
    message = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged = models.BooleanField(default=False)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    notified = models.CharField(max_length=64, blank=True, help_text="Channels the alert was sent to: email, webhook")
    notify_error = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["acknowledged", "-created_at"])]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.model_name} {self.horizon}: {self.message}"


class TrainingRun(models.Model):
    """One fine-tune or full retrain of a model family, and what became of its checkpoint.

    Kept when checkpoints are pruned: the retrain-stagnation alert reads the last runs.
    ``candidate_metric`` and ``active_metric`` are the validation metric of the new and of the live
    checkpoint on the SAME held-out range (apps.predictions.learning), for information: the new
    checkpoint goes to shadow (state SHADOW) and is promoted or refused on live seconds
    (apps.predictions.promotion), which updates the run.
    """

    class Kind(models.TextChoices):
        FINE_TUNE = "fine_tune", "Online fine-tune"
        FULL = "full", "Full retrain"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued (Train now)"
        RUNNING = "running", "Running"
        PROMOTED = "promoted", "Promoted (now live)"
        SHADOW = "shadow", "In shadow (judged on live seconds)"
        REFUSED = "refused", "Shadow refused (no proven edge)"
        KEPT = "kept", "Registered, live one kept"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (too few cases)"

    model_name = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    metric_name = models.CharField(max_length=64, blank=True)
    candidate_metric = models.FloatField(null=True, blank=True)
    active_metric = models.FloatField(null=True, blank=True)
    n_train = models.PositiveIntegerField(default=0)
    n_val = models.PositiveIntegerField(default=0)
    checkpoint = models.ForeignKey(ModelCheckpoint, on_delete=models.SET_NULL, null=True, blank=True)
    base_checkpoint = models.ForeignKey(ModelCheckpoint, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="+", help_text="The live checkpoint it started from / competed with")
    detail = models.JSONField(default=dict, blank=True)
    reason = models.CharField(max_length=255, blank=True, help_text="Why it was skipped, refused or failed")
    cases_needed = models.PositiveIntegerField(null=True, blank=True,
                                               help_text="Skipped: training cases it needs (held-out ones included)")
    requested_by = models.CharField(max_length=150, blank=True, help_text="User of a 'Train now'; blank = schedule")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.model_name} ({self.state})"
