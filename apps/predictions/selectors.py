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
    """A model's checkpoints, best first.

    Order: the out-of-sample mean net PnL per trade in bps after costs (``net_edge_bps``, from
    ``metrics["validation"]["net_edge_bps_per_trade"]["mean"]``; always-HOLD scores 0) descending,
    checkpoints without it (trained before it was measured) after every one that has it; then the
    old validation metric descending (no metric last); then the live one (a tie keeps it); then
    newest first. Macro-F1 alone rewards calls that do not cover the fee, hence the net edge first."""
    return list(ModelCheckpoint.objects.filter(model_name=model_name).order_by(
        F("net_edge_bps").desc(nulls_last=True), F("validation_metric").desc(nulls_last=True), "-is_active",
        "-created_at", "-pk"))


def checkpoint_panel(*, per_model: int = 5) -> list[dict]:
    """What the dashboard's checkpoints panel shows: per model family its best ``per_model``
    checkpoints in :func:`checkpoint_ranked` order plus its live and shadow ones when ranked lower:
    [{"model", "rows": [{"id", "rank", "version", "net_edge" (bps per trade), "metric", "state",
    "active", "pinned", "created_at", "load_error" (bool), "evidence": {"decision", "why", "n",
    "mean", "lo", "hi"} | None, "evidence_line", "replaced": {"id", "version"} | None}]}]."""
    from apps.predictions.promotion import evidence_line

    def row(rank: int, c: ModelCheckpoint, versions: dict[int, str]) -> dict:
        e = c.evidence or {}
        return {"id": c.pk, "rank": rank, "version": c.version, "net_edge": c.net_edge_bps,
                "metric": c.validation_metric, "state": c.state, "active": c.is_active, "pinned": c.pinned,
                "created_at": c.created_at, "load_error": bool(c.load_error),
                "evidence": {k: e.get(k) for k in ("decision", "why", "n", "mean", "lo", "hi")}
                if e.get("decision") else None, "evidence_line": evidence_line(e),
                "replaced": {"id": c.replaced_id, "version": versions[c.replaced_id]}
                if c.replaced_id in versions else None}

    names = list(ModelCheckpoint.objects.order_by("model_name").values_list("model_name", flat=True).distinct())
    out = []
    for name in names:
        ranked = checkpoint_ranked(model_name=name)
        versions = {c.pk: c.version for c in ranked}
        shown = [(i + 1, c) for i, c in enumerate(ranked) if i < per_model or c.state != ModelCheckpoint.State.RETIRED]
        out.append({"model": name, "rows": [row(rank, c, versions) for rank, c in shown]})
    return out


def checkpoint_shadow(*, model_name: str) -> ModelCheckpoint | None:
    """The model's checkpoint in shadow, or None."""
    return ModelCheckpoint.objects.filter(model_name=model_name, state=ModelCheckpoint.State.SHADOW).first()


def checkpoints_in_shadow() -> list[ModelCheckpoint]:
    """Every checkpoint in shadow, oldest first."""
    return list(ModelCheckpoint.objects.filter(state=ModelCheckpoint.State.SHADOW).order_by("created_at", "pk"))


def model_names_enabled() -> list[str]:
    """Enabled model families, in ml.models.specs order (a model without a settings row is enabled)."""
    from ml.models.specs import MODEL_NAMES

    disabled = set(ModelSetting.objects.filter(enabled=False).values_list("model_name", flat=True))
    return [name for name in MODEL_NAMES if name not in disabled]


def prediction_list(*, instrument: Instrument, model_name: str, start: datetime, end: datetime,
                    shadow: bool = False) -> QuerySet[Prediction]:
    """One model's inference history for an instrument, ``start <= ts_event < end``, oldest first:
    its live checkpoints' predictions, or its shadow checkpoints' ones with ``shadow``.

    ``input_package`` is deferred (load it per row, or ``unpack_input`` it, when needed)."""
    return (Prediction.objects.filter(instrument=instrument, model_name=model_name, ts_event__gte=start,
                                      ts_event__lt=end, shadow=shadow)
            .defer("input_package").order_by("ts_event"))
