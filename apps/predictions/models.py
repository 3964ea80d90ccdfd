"""Model registry (checkpoints), its settings, and inference history (predictions)."""
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from apps.market.models import Instrument


class ModelCheckpoint(models.Model):
    """A saved model file with the config, metrics and data range it was trained on."""

    model_name = models.CharField(max_length=64)
    version = models.CharField(max_length=64)
    path = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64)
    config = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    validation_metric = models.FloatField(null=True, blank=True, help_text="Higher is better")
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
                fields=["instrument", "model_name", "ts_event"], name="prediction_unique_natural_key"
            )
        ]
        indexes = [models.Index(fields=["instrument", "model_name", "-ts_event"])]
        ordering = ["-ts_event"]
