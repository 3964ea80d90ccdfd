"""Tasks of the ``default`` queue for the inference history: retention."""
from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.history.prune_inference_history", ignore_result=True,
             soft_time_limit=600, time_limit=900)
def prune_inference_history() -> dict:
    """Apply the admin's inference-history retention (count and age); scheduled hourly by bootstrap."""
    from apps.predictions.services import prediction_prune

    return prediction_prune()
