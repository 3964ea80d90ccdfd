"""Reads of the scored outcomes: accuracy, calibration and PnL per model, horizon, instrument and period.

All figures come from ``PredictionOutcome`` rows (definitions in ml/outcomes.py):

- accuracy: share of calls whose action equals the realized direction label;
- baseline_hold: share of HOLD labels, the accuracy of a model that always says HOLD;
- brier: mean multi-class Brier score (Brier 1950), lower is better, 2/3 = uninformed;
- pnl_bps_mean / pnl_bps_sum: PnL of acting on every BUY / SELL call for the horizon, bps of
  the notional after fees (HOLD contributes 0); trades: number of BUY / SELL calls;
- calibration: reliability bins and ECE (:func:`ml.outcomes.reliability_bins`).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import numpy as np
from django.db.models import Avg, Case, Count, F, FloatField, Max, Q, QuerySet, Sum, Value, When
from django.db.models.functions import TruncDay, TruncHour

from apps.market.models import Instrument
from apps.predictions.models import ModelAlert, PredictionOutcome, TrainingRun
from ml.outcomes import HORIZONS_MS, reliability_bins

logger = logging.getLogger(__name__)

_TRUNC = {"day": TruncDay, "hour": TruncHour}


def _outcomes(*, instrument: Instrument | None, model_name: str | None, horizon: str | None,
              start: datetime | None, end: datetime | None) -> QuerySet[PredictionOutcome]:
    qs = PredictionOutcome.objects.filter(shadow=False)  # the live calls; shadows: apps.predictions.promotion
    if instrument is not None:
        qs = qs.filter(instrument=instrument)
    if model_name:
        qs = qs.filter(model_name=model_name)
    if horizon:
        qs = qs.filter(horizon=horizon)
    if start is not None:
        qs = qs.filter(ts_event__gte=start)
    if end is not None:
        qs = qs.filter(ts_event__lt=end)
    return qs


def _one(field: str, value) -> Case:
    return Case(When(**{field: value}, then=Value(1.0)), default=Value(0.0), output_field=FloatField())


_AGGREGATES = {
    "n": Count("id"), "accuracy": Avg(_one("correct", True)), "baseline_hold": Avg(_one("label", "HOLD")),
    "brier": Avg("brier"), "confidence": Avg("confidence"), "pnl_bps_mean": Avg("pnl_bps"),
    "pnl_bps_sum": Sum("pnl_bps"), "trades": Count("id", filter=~Q(action="HOLD")),
}


def outcome_metrics(*, instrument: Instrument | None = None, model_name: str | None = None, horizon: str | None = None,
                    start: datetime | None = None, end: datetime | None = None, bucket: str = "day") -> list[dict]:
    """Metrics per model, horizon, instrument and ``bucket`` ("day" or "hour", UTC) of the
    predictions' ``ts_event`` in ``[start, end)``, oldest period first.

    Returns:
        [{"period": datetime, "model_name", "horizon", "symbol", "n", "accuracy", "baseline_hold",
        "brier", "confidence", "pnl_bps_mean", "pnl_bps_sum", "trades"}, ...] (module docstring).

    Raises:
        KeyError: an unknown bucket.
    """
    qs = _outcomes(instrument=instrument, model_name=model_name, horizon=horizon, start=start, end=end)
    rows = (qs.annotate(period=_TRUNC[bucket]("ts_event"), symbol=F("instrument__symbol"))
            .values("period", "model_name", "horizon", "symbol").annotate(**_AGGREGATES)
            .order_by("period", "model_name", "horizon", "symbol"))
    return list(rows)


def outcome_calibration(*, model_name: str, horizon: str, instrument: Instrument | None = None,
                        start: datetime | None = None, end: datetime | None = None, n_bins: int = 10) -> dict:
    """Reliability bins of the predicted action's probability, ECE and mean Brier score.

    Returns: {"bins": [...], "ece", "n", "brier"} (see ml.outcomes.reliability_bins)."""
    qs = _outcomes(instrument=instrument, model_name=model_name, horizon=horizon, start=start, end=end)
    rows = np.array(list(qs.values_list("confidence", "correct", "brier")), dtype=np.float64).reshape(-1, 3)
    result = reliability_bins(rows[:, 0], rows[:, 1] > 0.5, n_bins=n_bins)
    result["brier"] = float(rows[:, 2].mean()) if len(rows) else None
    return result


def learning_summary(*, instrument: Instrument | None = None, hours: int = 24, alerts: int = 10) -> dict:
    """What the dashboard's learning panel shows: per model and horizon the metrics of the last
    ``hours`` before the newest scored outcome (replays score the past, so not "now"), the open
    (unacknowledged) alerts, newest first, and the last training run per model.

    Returns: {"until": datetime | None, "hours", "horizons": [...], "models": {model: {horizon:
    {"n", "accuracy", "baseline_hold", "brier", "pnl_bps_mean", "trades"}}}, "alerts": [...],
    "runs": {model: {"id", "kind", "state", "metric", "candidate", "active", "reason", "cases_needed",
    "started_at"}}}."""
    qs = _outcomes(instrument=instrument, model_name=None, horizon=None, start=None, end=None)
    until = qs.aggregate(newest=Max("ts_event"))["newest"]
    models: dict[str, dict] = {}
    if until is not None:
        recent = qs.filter(ts_event__gt=until - timedelta(hours=hours))
        for row in recent.values("model_name", "horizon").annotate(**_AGGREGATES).order_by("model_name"):
            models.setdefault(row.pop("model_name"), {})[row.pop("horizon")] = row
    open_alerts = [
        {"id": a.pk, "kind": a.kind, "model_name": a.model_name, "horizon": a.horizon, "metric": a.metric,
         "message": a.message, "created_at": a.created_at.isoformat()}
        for a in ModelAlert.objects.filter(acknowledged=False).order_by("-created_at")[:alerts]]
    runs = {}
    for run in TrainingRun.objects.order_by("-started_at")[:50]:
        runs.setdefault(run.model_name, {
            "id": run.pk, "kind": run.kind, "state": run.state, "metric": run.metric_name,
            "candidate": run.candidate_metric, "active": run.active_metric, "reason": run.reason,
            "cases_needed": run.cases_needed, "started_at": run.started_at.isoformat()})
    return {"until": until, "hours": hours, "horizons": list(HORIZONS_MS), "models": models, "alerts": open_alerts,
            "runs": runs}
