"""Tasks of the ``training`` queue: full retrain and online fine-tune of a model family, each
registering its checkpoint and reporting progress to the dashboard (apps.predictions.learning)."""
from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.training.train_model", acks_late=True, ignore_result=True,
             soft_time_limit=3600, time_limit=3900)
def train_model(model_name: str) -> int | None:
    """Retrain ``model_name`` from scratch on its history plus the collected training cases and
    register the checkpoint (ranked, pruned; under the held-out replacement rule when recent cases
    allow, apps.predictions.learning.model_retrain),
    reporting progress (cache ``gogo:training:<model>`` and the dashboard group).
    Returns the new checkpoint id, or None when it ranked below the kept top N."""
    from apps.predictions.learning import model_retrain, training_progress_reporter

    report = training_progress_reporter(model_name=model_name, kind="full")
    try:
        checkpoint = model_retrain(model_name=model_name, progress=report)
    except Exception as exc:
        report.failed(exc)
        raise
    report.finished(metric=checkpoint.validation_metric if checkpoint else None)
    return checkpoint and checkpoint.pk


@shared_task(name="workers.training.fine_tune_model", acks_late=True, ignore_result=True,
             soft_time_limit=1800, time_limit=2000)
def fine_tune_model(model_name: str, days: float | None = None) -> int | None:
    """Fine-tune ``model_name``'s live checkpoint on its recent training cases (scored predictions,
    annotations, paper-trade rewards of the last ``days``), evaluate on the held-out latest part,
    register, and promote only when it beats the live one there. Returns the TrainingRun id."""
    from apps.predictions.learning import model_fine_tune

    run = model_fine_tune(model_name=model_name, days=days)
    return run.pk
