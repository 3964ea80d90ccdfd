"""Tasks of the ``training`` queue: full retrain and online fine-tune of a model family, each
registering its checkpoint (to shadow when a live one exists) and reporting progress to the
dashboard (apps.predictions.learning)."""
from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.training.train_model", acks_late=True, ignore_result=True,
             soft_time_limit=3600, time_limit=3900)
def train_model(model_name: str, run_id: int | None = None) -> int:
    """Retrain ``model_name`` from scratch on its history plus the collected training cases
    (apps.predictions.learning.model_retrain): the checkpoint goes to shadow when a live one
    exists. ``run_id``: a queued TrainingRun ("Train now") to carry out. Progress goes to the cache
    ``gogo:training:<model>`` and the dashboard group. Returns the TrainingRun id."""
    from apps.predictions.learning import model_retrain

    return model_retrain(model_name=model_name, run=_queued(run_id)).pk


@shared_task(name="workers.training.fine_tune_model", acks_late=True, ignore_result=True,
             soft_time_limit=1800, time_limit=2000)
def fine_tune_model(model_name: str, days: float | None = None, run_id: int | None = None) -> int:
    """Fine-tune ``model_name``'s live checkpoint on its recent training cases (scored predictions
    and annotations with net outcomes, paper-trade rewards of the last ``days``), measure it on the
    held-out latest part and send it to shadow; skipped (with the reason and the cases it needs)
    when there are too few. ``run_id``: a queued TrainingRun ("Train now"). Returns the TrainingRun id."""
    from apps.predictions.learning import model_fine_tune

    run = model_fine_tune(model_name=model_name, days=days, run=_queued(run_id))
    return run.pk


def _queued(run_id: int | None):
    from apps.predictions.models import TrainingRun

    return TrainingRun.objects.get(pk=run_id) if run_id is not None else None
