"""Reads of the model registry and the inference history."""
from __future__ import annotations

from datetime import datetime

from django.db.models import F, QuerySet

from apps.market.models import Instrument
from apps.predictions.models import ModelCheckpoint, ModelSetting, Prediction, RegistrySettings


def registry_settings_get() -> RegistrySettings:
    """The single settings row (created with defaults on first use)."""
    settings_row, _ = RegistrySettings.objects.get_or_create(pk=1)
    return settings_row


def checkpoint_ranked(*, model_name: str) -> list[ModelCheckpoint]:
    """A model's checkpoints, best first: validation metric descending (no metric last), then the
    live one (a new checkpoint must beat it, not tie it), then newest first (among the others a
    tie goes to the later training)."""
    return list(ModelCheckpoint.objects.filter(model_name=model_name).order_by(
        F("validation_metric").desc(nulls_last=True), "-is_active", "-created_at", "-pk"))


def model_names_enabled() -> list[str]:
    """Enabled model families, in ml.models.specs order (a model without a settings row is enabled)."""
    from ml.models.specs import MODEL_NAMES

    disabled = set(ModelSetting.objects.filter(enabled=False).values_list("model_name", flat=True))
    return [name for name in MODEL_NAMES if name not in disabled]


def prediction_list(*, instrument: Instrument, model_name: str, start: datetime, end: datetime) -> QuerySet[Prediction]:
    """One model's inference history for an instrument, ``start <= ts_event < end``, oldest first.

    ``input_package`` is deferred (load it per row, or ``unpack_input`` it, when needed)."""
    return (Prediction.objects.filter(instrument=instrument, model_name=model_name, ts_event__gte=start,
                                      ts_event__lt=end)
            .defer("input_package").order_by("ts_event"))
