"""Tasks of the ``training`` queue: train a model family and register its checkpoint."""
from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.training.train_model", acks_late=True, ignore_result=True,
             soft_time_limit=3600, time_limit=3900)
def train_model(model_name: str) -> int | None:
    """Train ``model_name`` on its default data and register the checkpoint (ranked, pruned).
    Returns the new checkpoint id, or None when it ranked below the kept top N."""
    from apps.predictions.services import model_train_and_register

    checkpoint = model_train_and_register(model_name=model_name)
    return checkpoint and checkpoint.pk
