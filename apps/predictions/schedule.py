"""The learning loop's periodic tasks as django-celery-beat rows (beat's DatabaseScheduler reads
them; the admin edits them). Created once by :func:`learning_schedule_ensure` (bootstrap), admin
edits kept.

| row | task | when (UTC) | queue |
|---|---|---|---|
| outcome scoring sweep | workers.scoring.score_outcomes_sweep | every minute | default |
| model alert check | workers.scoring.check_model_alerts | every 5 minutes | default |
| shadow promotion check | workers.scoring.evaluate_shadows | every 5 minutes | default |
| fine-tune <model> | workers.training.fine_tune_model | daily 02:30 / 02:50 / 03:10 | training |
| full retrain <model> | workers.training.train_model | Sundays 04:00 / 05:00 / 06:00 | training |

Fine-tunes and retrains are enabled: their checkpoints go to shadow and only a proven net edge on
live seconds makes one live (``apps.predictions.promotion``). They run at night (UTC), staggered,
because the single ``training`` worker shares the machine with the engine; a day gives a shadow
86 400 scored seconds to be judged on before the next one supersedes it.

Rows created by earlier versions with their old defaults (an hourly fine-tune, a disabled weekly
retrain on a 7-day interval) are moved to these defaults; a row an admin changed is left alone.
"""
from __future__ import annotations

import json
import logging

logger = logging.getLogger(__name__)

FINE_TUNE_AT = ((2, 30), (2, 50), (3, 10))  # (hour, minute) UTC, per model in ml.models.specs order
RETRAIN_AT = (4, 5, 6)  # hour UTC on Sundays, per model


def learning_schedule_ensure() -> None:
    """Create the module's rows (idempotent; admin edits kept, old defaults upgraded)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from ml.models.specs import MODEL_NAMES

    def every(n: int, period: str) -> IntervalSchedule:
        return IntervalSchedule.objects.get_or_create(every=n, period=period)[0]

    for name, task, interval in (
            ("outcome scoring sweep", "workers.scoring.score_outcomes_sweep", every(1, IntervalSchedule.MINUTES)),
            ("model alert check", "workers.scoring.check_model_alerts", every(5, IntervalSchedule.MINUTES)),
            ("shadow promotion check", "workers.scoring.evaluate_shadows", every(5, IntervalSchedule.MINUTES))):
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": interval, "queue": "default"})
    for k, model_name in enumerate(MODEL_NAMES):
        hour, minute = FINE_TUNE_AT[k % len(FINE_TUNE_AT)]
        _ensure(f"fine-tune {model_name}", "workers.training.fine_tune_model", model_name, _crontab(minute, hour, "*"),
                old=lambda t: t.interval_id is not None and (t.interval.every, t.interval.period) == (1, "hours"))
        _ensure(f"full retrain {model_name}", "workers.training.train_model", model_name,
                _crontab(0, RETRAIN_AT[k % len(RETRAIN_AT)], "0"),
                old=lambda t: not t.enabled and t.interval_id is not None
                and (t.interval.every, t.interval.period) == (7, "days"))


def _crontab(minute: int, hour: int, day_of_week: str):
    from django_celery_beat.models import CrontabSchedule

    return CrontabSchedule.objects.get_or_create(minute=str(minute), hour=str(hour), day_of_week=day_of_week,
                                                 day_of_month="*", month_of_year="*", timezone="UTC")[0]


def _ensure(name: str, task: str, model_name: str, crontab, old) -> None:
    from django_celery_beat.models import PeriodicTask

    row, created = PeriodicTask.objects.get_or_create(name=name, defaults={
        "task": task, "crontab": crontab, "args": json.dumps([model_name]), "queue": "training", "enabled": True})
    if not created and old(row):
        row.interval, row.crontab, row.enabled = None, crontab, True
        row.save()
        logger.info("periodic task %r moved to its new default schedule (%s)", name, crontab)
