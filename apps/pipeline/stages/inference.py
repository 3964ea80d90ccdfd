"""Inference: every enabled model on a second's BaseDataInput, in this process or on the
``inference`` queue (workers mode, GOGO_INFERENCE_IN_WORKER).

Below the completeness gate (GOGO_MIN_COMPLETENESS, overall) no model runs and each enabled model
stores a skipped prediction; above it each model runs (or is skipped when its own components are
thin) and stores its prediction with its input package (``apps.predictions.inference``). Every
model's output of a second is fed to all models at the next second (``last_outputs``).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
from django.conf import settings

from apps.market.convert import ms_to_datetime
from apps.market.models import Instrument
from apps.pipeline.stages.counters import InstrumentCounters
from apps.predictions import inference as prediction_inference
from apps.predictions import services as prediction_services
from apps.predictions.models import Prediction
from ml.features.base_input import BaseDataInput
from ml.models.output import ModelOutput

logger = logging.getLogger(__name__)


class Inference:
    """The models of one run. ``models``: name -> (nn.Module, ModelCheckpoint), empty in workers
    mode; ``last_outputs``: model name -> the latest ModelOutput of each model."""

    def __init__(self, *, traded: Instrument, reference: Instrument, counters: InstrumentCounters,
                 store_inputs: bool = True) -> None:
        self.traded, self.reference, self.counters, self.store_inputs = traded, reference, counters, store_inputs
        self.in_worker = settings.GOGO_INFERENCE_IN_WORKER
        self.models: dict[str, tuple] = {} if self.in_worker else prediction_services.models_load_enabled()
        self.last_outputs: dict[str, ModelOutput] = {}
        # Batch-1 inference of small models: one intra-op thread is as fast when the machine is idle
        # and several times faster when other processes compete for the 2 cores (spinning OpenMP threads).
        torch.set_num_threads(settings.GOGO_INFERENCE_THREADS)

    def in_process(self) -> None:
        """Run the models here from now on (a backtest runs them in batches), loading them if needed."""
        if self.in_worker:
            self.models, self.in_worker = prediction_services.models_load_enabled(), False

    def run(self, ts: int, inputs: BaseDataInput) -> prediction_inference.InferenceResult:
        """Every enabled model on ``inputs`` (second ``ts``, ms), stored; the outputs are recorded
        (:meth:`record`). A failing worker costs this second's outputs, never the run."""
        if self.in_worker:
            result = self._run_in_worker(ts)
        else:
            result = prediction_inference.inference_run(
                instrument=self.traded, inputs=inputs, models=self.models, store_inputs=self.store_inputs,
                min_completeness=settings.GOGO_MIN_COMPLETENESS)
        self.counters.history_errors += result.storage_errors
        self.record(result.outputs)
        return result

    def record(self, outputs: Mapping[str, ModelOutput]) -> None:
        """Take a second's outputs (model name -> ModelOutput; empty when no model predicted) as the
        next second's ``last_outputs`` and count them."""
        self.last_outputs.update(outputs)
        counts = self.counters.model_predictions
        for name in outputs:
            counts[name] = counts.get(name, 0) + 1
        if outputs:
            self.counters.predictions += 1
        else:
            self.counters.skipped_inferences += 1

    def _run_in_worker(self, ts: int) -> prediction_inference.InferenceResult:
        """Workers mode: the ``inference`` queue runs every enabled model on the stored data of this
        second (the engine flushed it) and stores the predictions; the engine waits for the outputs.
        A worker that does not answer within GOGO_INFERENCE_TIMEOUT seconds costs this second's
        decision (logged and counted as skipped), never the session."""
        from celery.exceptions import CeleryError

        from workers.inference import run_inference

        wire = prediction_inference.outputs_to_wire(self.last_outputs)
        result = prediction_inference.InferenceResult()
        try:
            reply = run_inference.apply_async((self.traded.pk, self.reference.pk, ts, wire), queue="inference").get(
                timeout=settings.GOGO_INFERENCE_TIMEOUT, disable_sync_subtasks=False, propagate=False)
        except (CeleryError, TimeoutError) as exc:
            reply = exc
        if isinstance(reply, BaseException):  # timed out, or the task itself raised
            logger.error("inference worker failed at %d: %r", ts, reply)
            self.counters.inference_failures += 1
            result.skipped = {"worker": f"inference worker: {type(reply).__name__}: {reply}"}
            return result
        result.outputs = prediction_inference.outputs_from_wire(reply["outputs"])
        result.skipped, result.storage_errors = reply["skipped"], reply["storage_errors"]
        result.rows = {p.model_name: p for p in Prediction.objects.filter(
            instrument=self.traded, ts_event=ms_to_datetime(ts), model_name__in=list(result.outputs))}
        return result
