"""Model alerts: a model that regresses or stagnates is recorded, shown in the dashboard, and
optionally sent by e-mail (``GOGO_ALERT_EMAILS``) and to a webhook (``GOGO_ALERT_WEBHOOK_URL``).

Rules (thresholds in :class:`ml.outcomes.AlertRule`, defaults window 500, k 3, epsilon 0.01, 3 retrains):

- regression, per instrument x model x horizon: the accuracy of the last ``window`` scored calls
  is below the accuracy of the ``window`` calls before them by more than ``k_se`` standard
  errors of the difference (:func:`ml.outcomes.check_regression`);
- stagnation, per instrument x model x horizon: the accuracy of the last ``window`` calls is within
  ±``epsilon`` of the always-HOLD baseline on the same calls (:func:`ml.outcomes.check_stagnation`);
- stagnation, per model: none of the last ``retrains`` decided training runs (fine-tunes or full
  retrains, ``TrainingRun``) was promoted: their shadows were refused on live seconds
  (``apps.predictions.promotion``) or they were pruned at once. Runs still in shadow, skipped or
  failed are not decided.

An alert is not repeated while an unacknowledged one of the same kind, model, instrument, horizon
and metric is younger than ``COOLDOWN``. Notification failures are logged, stored on the alert
(``notify_error``) and counted in the cache key ``gogo:alerts:notify_failures``; never raised.
"""
from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail

from apps.market.models import Instrument
from apps.predictions.models import ModelAlert, PredictionOutcome, TrainingRun
from ml.outcomes import ACTIONS, AlertRule, check_regression, check_stagnation

logger = logging.getLogger(__name__)

COOLDOWN = timedelta(hours=6)
RECENT = timedelta(days=2)  # model x horizon x instrument groups with an outcome this close to the newest are checked
FAILURES_KEY = "gogo:alerts:notify_failures"


def model_alerts_check(*, instrument: Instrument | None = None, rule: AlertRule = AlertRule(),
                       now: datetime | None = None, notify: bool = True) -> list[ModelAlert]:
    """Apply the module's rules to the stored outcomes and training runs; create (and notify)
    the new alerts. Returns them."""
    now = now or datetime.now(UTC)
    created = []
    groups = PredictionOutcome.objects.filter(shadow=False)  # a shadow is judged by apps.predictions.promotion
    if instrument is not None:
        groups = groups.filter(instrument=instrument)
    newest = groups.order_by("-ts_event").values_list("ts_event", flat=True).first()
    groups = groups.filter(ts_event__gte=newest - RECENT) if newest else groups.none()  # groups still scored
    for instrument_id, model_name, horizon in groups.values_list("instrument_id", "model_name", "horizon").distinct():
        rows = list(PredictionOutcome.objects.filter(instrument_id=instrument_id, model_name=model_name, horizon=horizon,
                                                     shadow=False)
                    .order_by("-ts_event").values_list("correct", "label")[: 2 * rule.window])[::-1]  # oldest first
        if len(rows) < rule.window:
            continue
        correct = np.array([r[0] for r in rows], dtype=bool)
        labels = np.array([ACTIONS.index(r[1]) for r in rows], dtype=np.int64)
        where = {"model_name": model_name, "instrument_id": instrument_id, "horizon": horizon}
        regressed = check_regression(correct[:-rule.window], correct[-rule.window:], rule)
        if regressed:
            created.append(_raise(ModelAlert.Kind.REGRESSION, "accuracy", regressed, now, where,
                                  f"accuracy {regressed['recent']:.3f} < {regressed['previous']:.3f} over the "
                                  f"previous {rule.window} calls ({regressed['drop'] / regressed['se']:.1f} SE)"))
        stagnant = check_stagnation(correct, labels, rule)
        if stagnant:
            created.append(_raise(ModelAlert.Kind.STAGNATION, "accuracy_vs_hold", stagnant, now, where,
                                  f"accuracy {stagnant['accuracy']:.3f} within ±{rule.epsilon} of always-HOLD "
                                  f"({stagnant['baseline_hold']:.3f})"))
    for model_name in set(TrainingRun.objects.values_list("model_name", flat=True)):
        runs = list(TrainingRun.objects.filter(model_name=model_name, state__in=[
            TrainingRun.State.PROMOTED, TrainingRun.State.REFUSED, TrainingRun.State.KEPT]
        ).order_by("-started_at")[:rule.retrains])
        if len(runs) == rule.retrains and all(r.state != TrainingRun.State.PROMOTED for r in runs):
            detail = {"runs": [r.pk for r in runs], "candidate": [r.candidate_metric for r in runs],
                      "active": [r.active_metric for r in runs], "retrains": rule.retrains}
            created.append(_raise(ModelAlert.Kind.STAGNATION, runs[0].metric_name or "validation", detail, now,
                                  {"model_name": model_name, "instrument_id": None, "horizon": ""},
                                  f"none of the last {rule.retrains} trainings beat the live checkpoint"))
    created = [a for a in created if a is not None]
    if notify:
        for alert in created:
            alert_notify(alert=alert)
    return created


def _raise(kind: str, metric: str, detail: dict, now: datetime, where: dict, message: str) -> ModelAlert | None:
    recent = ModelAlert.objects.filter(kind=kind, metric=metric, acknowledged=False, created_at__gte=now - COOLDOWN,
                                       **where)
    if recent.exists():
        return None
    alert = ModelAlert.objects.create(kind=kind, metric=metric, detail=detail, message=message[:255], **where)
    logger.warning("model alert: %s", alert)
    return alert


def alert_acknowledge(*, alert: ModelAlert) -> ModelAlert:
    """Mark ``alert`` as seen (it leaves the dashboard's open list)."""
    ModelAlert.objects.filter(pk=alert.pk).update(acknowledged=True, acknowledged_at=datetime.now(UTC))
    alert.refresh_from_db()
    return alert


def alert_payload(alert: ModelAlert) -> dict:
    """JSON form of an alert (webhook body, dashboard)."""
    return {"id": alert.pk, "kind": alert.kind, "model_name": alert.model_name, "metric": alert.metric,
            "horizon": alert.horizon, "instrument": alert.instrument.symbol if alert.instrument_id else None,
            "message": alert.message, "detail": alert.detail, "created_at": alert.created_at.isoformat()}


def alert_notify(*, alert: ModelAlert) -> list[str]:
    """Send ``alert`` by e-mail and / or webhook as configured (module docstring). Returns the
    channels that succeeded; failures are logged, stored and counted, never raised."""
    sent, errors = [], []
    payload = alert_payload(alert)
    if settings.GOGO_ALERT_EMAILS:
        try:
            send_mail(f"[gogo] {alert.kind}: {alert.model_name} {alert.horizon}".strip(),
                      f"{alert.message}\n\n{json.dumps(payload, indent=2, default=str)}", None,
                      list(settings.GOGO_ALERT_EMAILS))
            sent.append("email")
        except Exception as exc:  # SMTP errors come in many types; an alert must never fail the task
            errors.append(f"email: {type(exc).__name__}: {exc}")
    if settings.GOGO_ALERT_WEBHOOK_URL:
        try:
            _post_json(settings.GOGO_ALERT_WEBHOOK_URL, payload, settings.GOGO_ALERT_WEBHOOK_TIMEOUT_S)
            sent.append("webhook")
        except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors
            errors.append(f"webhook: {type(exc).__name__}: {exc}")
    if errors:
        logger.error("alert %s: notification failed: %s", alert.pk, "; ".join(errors))
        cache.add(FAILURES_KEY, 0, None)
        cache.incr(FAILURES_KEY, len(errors))
    ModelAlert.objects.filter(pk=alert.pk).update(notified=",".join(sent), notify_error="; ".join(errors)[:500])
    return sent


def _post_json(url: str, payload: dict, timeout: float) -> None:
    """POST ``payload`` as JSON; raises HTTPError (an OSError) on a non-2xx answer."""
    request = urllib.request.Request(url, data=json.dumps(payload, default=str).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "gogo-alerts"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (admin-configured URL)
        response.read()


def alert_notify_failures() -> int:
    """Notification failures counted since the cache was last cleared."""
    return int(cache.get(FAILURES_KEY) or 0)
