"""Tasks of the ``inference`` queue: every enabled model, every second."""
from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.inference.run_inference", queue="inference", acks_late=False, ignore_result=True,
             soft_time_limit=2, time_limit=5)
def run_inference(instrument_id: int, reference_id: int, ts_ms: int) -> dict:
    """Run every enabled model at the close of second ``ts_ms`` on the stored market data and store
    the predictions (apps.predictions.inference). Not retried: the next second supersedes it.

    Returns {"predicted": [model names], "skipped": {model: reason}, "storage_errors": n}."""
    from django.conf import settings

    from apps.market.models import Instrument
    from apps.predictions.inference import inference_input_from_db, inference_run, worker_models

    instrument = Instrument.objects.get(pk=instrument_id)
    reference = Instrument.objects.get(pk=reference_id)
    inputs = inference_input_from_db(instrument=instrument, reference=reference, ts_ms=ts_ms)
    result = inference_run(instrument=instrument, inputs=inputs, models=worker_models(),
                           min_completeness=settings.GOGO_MIN_COMPLETENESS)
    return {"predicted": sorted(result.outputs), "skipped": result.skipped, "storage_errors": result.storage_errors}
