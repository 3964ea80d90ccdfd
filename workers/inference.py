"""Tasks of the ``inference`` queue: every enabled model, every second."""
from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


# The limits cover the first call of a worker process, which loads the checkpoints; the engine's
# own wait (GOGO_INFERENCE_TIMEOUT) bounds each second.
@shared_task(name="workers.inference.run_inference", acks_late=False,
             soft_time_limit=30, time_limit=60)
def run_inference(instrument_id: int, reference_id: int, ts_ms: int, last_outputs: dict | None = None) -> dict:
    """Run every enabled model at the close of second ``ts_ms`` on the stored market data and store
    the predictions (apps.predictions.inference). Not retried: the next second supersedes it.

    ``last_outputs``: the previous second's outputs in ``outputs_to_wire`` form (cross-model
    feeding). Returns {"predicted": [model names], "outputs": wire form, "skipped": {model: reason},
    "storage_errors": n}."""
    from django.conf import settings

    from apps.market.models import Instrument
    from apps.predictions.inference import (
        inference_input_from_db,
        inference_run,
        outputs_from_wire,
        outputs_to_wire,
        worker_models,
    )

    instrument = Instrument.objects.get(pk=instrument_id)
    reference = Instrument.objects.get(pk=reference_id)
    inputs = inference_input_from_db(instrument=instrument, reference=reference, ts_ms=ts_ms,
                                     last_outputs=outputs_from_wire(last_outputs or {}))
    result = inference_run(instrument=instrument, inputs=inputs, models=worker_models(),
                           min_completeness=settings.GOGO_MIN_COMPLETENESS)
    return {"predicted": sorted(result.outputs), "outputs": outputs_to_wire(result.outputs),
            "skipped": result.skipped, "storage_errors": result.storage_errors}
