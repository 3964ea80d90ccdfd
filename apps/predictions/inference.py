"""Inference services: run every enabled model on one BaseDataInput and store each output.

Two callers, one code path (:func:`inference_run`):

- the engine (embedded default, replay, ingest worker) builds the BaseDataInput from its in-memory
  rings each second and calls it in-process;
- the Celery task ``workers.inference.run_inference`` (queue ``inference``, for a separate ML
  worker) rebuilds the input from the stored candles and COB frames (:func:`inference_input_from_db`)
  and calls the same function with the worker's cached models (:func:`worker_models`).

Shadow mode: besides the live checkpoints it is given, :func:`inference_run` runs each of those
models' SHADOW checkpoint (``apps.predictions.promotion``; cached per process, re-checked every
``SHADOW_REFRESH_S``) on the same input and stores its prediction with ``shadow=True``, so it is
scored like the live one; its outputs go to ``InferenceResult.shadow_outputs`` only, never to
``outputs``, which is all the desk reads.

Storage failures (the inference history) are logged and counted and never stop the predictions:
each row is written in its own savepoint.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import DatabaseError, transaction

from apps.market import selectors as market_selectors
from apps.market.convert import ms_to_datetime
from apps.market.models import Instrument
from apps.predictions.models import ModelCheckpoint, Prediction
from apps.predictions.services import PredictionItem, pack_input, prediction_record_many
from ml.features.base_input import WINDOW, BaseDataInput, InputError, build_base_data_input
from ml.features.rings import TIMEFRAME_MS, CandleRing, FrameRing
from ml.models.live import cascade_order, record_output
from ml.models.output import ACTIONS, ModelOutput
from ml.models.specs import spec_for

logger = logging.getLogger(__name__)

SHADOW_REFRESH_S = 5.0  # how often a process looks for a new, promoted or retired shadow checkpoint


@dataclass
class InferenceResult:
    """Outputs of one second: model name -> ModelOutput (live models that predicted; all the desk
    reads), the stored live rows (model name -> Prediction; absent when storing failed), skip
    reasons, storage failures, and the shadow checkpoints' outputs and rows (scored, never traded)."""

    outputs: dict[str, ModelOutput] = field(default_factory=dict)
    rows: dict[str, Prediction] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    storage_errors: int = 0
    shadow_outputs: dict[str, ModelOutput] = field(default_factory=dict)
    shadow_rows: dict[str, Prediction] = field(default_factory=dict)


def inference_run(*, instrument: Instrument, inputs: BaseDataInput, models: dict[str, tuple],
                  store_inputs: bool = True, min_completeness: float | None = None,
                  shadows: bool | None = None) -> InferenceResult:
    """Run each model (name -> (nn.Module, ModelCheckpoint)) on ``inputs`` and store every result.

    The models run in cascade order (cnn -> transformer -> dqn); each live output is recorded in
    ``inputs.last_outputs`` at once, so the later models read this second's (``ml.models.live``).

    A model whose own components are too incomplete, or that raises, is stored as skipped with
    the reason (errors are logged with their traceback). With
    ``min_completeness`` set and the overall completeness below it, no model runs and each is
    stored as skipped (the engine's gate). Each stored prediction carries the compressed arrays
    the model read (``spec.package``) when ``store_inputs``.

    ``shadows`` (default: setting GOGO_SHADOW_INFERENCE, True): also run the shadow checkpoint of
    each model in ``models`` (module docstring); a shadow that fails is logged and left out.
    """
    result = InferenceResult()
    completeness = inputs.completeness()
    gate = gate_reason(completeness, min_completeness)
    packages: dict[tuple, bytes] = {}
    items = []
    for name in cascade_order(models):  # cnn -> transformer -> dqn: each reads those before (ml.models.live)
        model, checkpoint = models[name]
        spec = spec_for(name)
        if gate:
            result.skipped[name] = gate
            items.append(PredictionItem(name, checkpoint, reason=gate))
            continue
        try:
            output = spec.predict(model, inputs)
        except InputError as exc:
            result.skipped[name] = str(exc)
            items.append(PredictionItem(name, checkpoint, reason=str(exc)))
            continue
        except Exception as exc:  # one broken model must not stop the others or the engine
            logger.exception("inference: model %s failed at %d", name, inputs.ts)
            result.skipped[name] = f"model error: {type(exc).__name__}: {exc}"
            items.append(PredictionItem(name, checkpoint, reason=result.skipped[name]))
            continue
        result.outputs[name] = output
        record_output(inputs, output)
        package = None
        if store_inputs:
            arrays = spec.package(model, inputs)
            key = tuple(sorted((k, v.shape) for k, v in arrays.items()))
            package = packages.get(key) or packages.setdefault(key, pack_input(arrays))
        items.append(PredictionItem(name, checkpoint, output=output, input_package=package))
    if not gate and (shadows if shadows is not None else getattr(settings, "GOGO_SHADOW_INFERENCE", True)):
        items += _shadow_items(result, inputs, [n for n in models if n in result.outputs], store_inputs, packages)
    _store(result, instrument=instrument, ts_event_ms=inputs.ts, completeness=completeness, items=items)
    if result.outputs and result.rows:
        _schedule_outcomes(instrument.pk, inputs.ts)
    return result


def _shadow_items(result: InferenceResult, inputs: BaseDataInput, names: list[str], store_inputs: bool,
                  packages: dict[tuple, bytes]) -> list[PredictionItem]:
    """Predictions of the shadow checkpoints of ``names`` (models whose live checkpoint predicted)."""
    items = []
    for name, (model, checkpoint) in shadow_models(names).items():
        spec = spec_for(name)
        try:
            output = spec.predict(model, inputs)
        except Exception:  # a shadow must never cost the live predictions
            logger.warning("inference: shadow %s failed at %d", checkpoint, inputs.ts, exc_info=True)
            continue
        result.shadow_outputs[name] = output
        package = None
        if store_inputs:
            arrays = spec.package(model, inputs)
            key = tuple(sorted((k, v.shape) for k, v in arrays.items()))
            package = packages.get(key) or packages.setdefault(key, pack_input(arrays))
        items.append(PredictionItem(name, checkpoint, output=output, input_package=package, shadow=True))
    return items


_SHADOWS: dict[str, tuple] = {}
_SHADOWS_CHECKED = [float("-inf")]


def shadow_models(names: list[str]) -> dict[str, tuple]:
    """The shadow checkpoints of ``names`` loaded for inference: name -> (model, ModelCheckpoint),
    cached in this process and re-read from the registry at most every SHADOW_REFRESH_S seconds
    (one query); an unloadable shadow is left out (``services.model_load_shadow``)."""
    from apps.predictions.services import model_load_shadow

    now = time.monotonic()
    if now - _SHADOWS_CHECKED[0] >= SHADOW_REFRESH_S:
        _SHADOWS_CHECKED[0] = now
        current = dict(ModelCheckpoint.objects.filter(state=ModelCheckpoint.State.SHADOW)
                       .values_list("model_name", "pk"))
        for name in list(_SHADOWS):
            if _SHADOWS[name][1].pk != current.get(name):
                del _SHADOWS[name]
        for name in current.keys() - _SHADOWS.keys():
            loaded = model_load_shadow(model_name=name)
            if loaded is not None:
                _SHADOWS[name] = loaded
    return {name: _SHADOWS[name] for name in names if name in _SHADOWS}


def shadow_models_forget() -> None:
    """Drop the cached shadows so the next inference re-reads the registry (after a promotion here)."""
    _SHADOWS.clear()
    _SHADOWS_CHECKED[0] = float("-inf")


def _schedule_outcomes(instrument_id: int, ts_ms: int) -> None:
    """Deferred outcome scoring of this second's predictions, once they are committed (throttled;
    apps.predictions.outcomes.outcome_schedule)."""
    from apps.predictions.outcomes import outcome_schedule

    transaction.on_commit(lambda: outcome_schedule(instrument_id=instrument_id, ts_event_ms=ts_ms))


def gate_reason(completeness: dict[str, float], minimum: float | None) -> str:
    if minimum is None or completeness["overall"] >= minimum:
        return ""
    low = ", ".join(f"{k} {v:.2f}" for k, v in completeness.items() if k != "overall" and v < 1.0)
    return f"completeness {completeness['overall']:.2f} < {minimum:.2f} ({low})"


def _store(result: InferenceResult, *, items: list[PredictionItem], **kwargs) -> None:
    if not items:
        return
    try:
        with transaction.atomic():  # a savepoint: a failed write leaves the caller's transaction usable
            rows = prediction_record_many(items=items, **kwargs)
        result.rows = {row.model_name: row for row in rows if not row.shadow}
        result.shadow_rows = {row.model_name: row for row in rows if row.shadow}
    except DatabaseError:
        result.storage_errors += len(items)
        logger.exception("inference history: storing %d predictions failed (the outputs are still used)", len(items))


def inference_input_from_db(*, instrument: Instrument, reference: Instrument, ts_ms: int,
                            last_outputs: dict[str, ModelOutput] | None = None) -> BaseDataInput:
    """The BaseDataInput at the close of second ``ts_ms``, rebuilt from stored candles and frames
    (the separate-worker path; the engine uses its rings). Reads only data closed by ``ts_ms + 1 s``."""
    end = ms_to_datetime(ts_ms + 1000)
    rings = {}
    for timeframe, period in TIMEFRAME_MS.items():
        ring = CandleRing(timeframe, capacity=WINDOW)
        closed = market_selectors.candle_list(instrument=instrument, timeframe=timeframe,
                                              end=ms_to_datetime(ts_ms + 1000 - period + 1), limit=WINDOW)
        ring.extend(closed)
        rings[timeframe] = ring
    reference_ring = CandleRing("1s", capacity=WINDOW)
    reference_ring.extend(market_selectors.candle_list(instrument=reference, timeframe="1s", end=end, limit=WINDOW))
    reference_1m = CandleRing("1m", capacity=WINDOW)
    reference_1m.extend(market_selectors.candle_list(instrument=reference, timeframe="1m",
                                                     end=ms_to_datetime(ts_ms + 1000 - 60_000 + 1), limit=WINDOW))
    frame_ring = FrameRing(capacity=WINDOW, n_buckets=instrument.bucket_count)
    rows = market_selectors.cob_frame_list(instrument=instrument, start=end - timedelta(seconds=WINDOW), end=end)
    frame_ring.extend(market_selectors.cob_frame_event(instrument.symbol, r) for r in rows)
    return build_base_data_input(ts=ts_ms, symbol=instrument.symbol, reference_symbol=reference.symbol, rings=rings,
                                 reference_ring=reference_ring, frame_ring=frame_ring, last_outputs=last_outputs,
                                 reference_1m_ring=reference_1m)


_WORKER_MODELS: dict[str, tuple] = {}


def worker_models() -> dict[str, tuple]:
    """The enabled models' live checkpoints, cached in this process; a model is reloaded when its
    active checkpoint changes (new training, admin rollback). Never trains (that is bootstrap's job)."""
    from apps.predictions.selectors import model_names_enabled
    from apps.predictions.services import model_load_live

    enabled = model_names_enabled()
    active = dict(ModelCheckpoint.objects.filter(is_active=True, model_name__in=enabled)
                  .values_list("model_name", "pk"))
    for name in list(_WORKER_MODELS):
        if name not in enabled or _WORKER_MODELS[name][1].pk != active.get(name):
            del _WORKER_MODELS[name]
    for name in enabled:
        if name not in _WORKER_MODELS:
            try:
                _WORKER_MODELS[name] = model_load_live(model_name=name, train_if_missing=False)
            except LookupError:
                logger.error("inference: no loadable %s checkpoint; the model is skipped", name)
    return dict(_WORKER_MODELS)


def outputs_to_wire(outputs: dict[str, ModelOutput]) -> dict[str, dict]:
    """ModelOutputs as JSON-safe dicts for a Celery message (probs in ACTIONS order, hidden and the
    metadata kept: the desk reads ``edge_bps`` from it, the next model its ``ts``)."""
    return {
        name: {"version": o.model_version, "probs": [o.probs[a] for a in ACTIONS],
               "predicted_returns": dict(o.predicted_returns), "hidden": [float(v) for v in o.hidden],
               "metadata": _json_safe(o.metadata)}
        for name, o in outputs.items()
    }


def _json_safe(value):
    """``value`` with numpy scalars and arrays turned into Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def outputs_from_wire(data: dict[str, dict]) -> dict[str, ModelOutput]:
    """Inverse of outputs_to_wire; raises ValueError on probabilities that are not a distribution."""
    return {
        name: ModelOutput.from_probs(model_name=name, model_version=d["version"], probs=np.asarray(d["probs"]),
                                     predicted_returns=d.get("predicted_returns"), hidden=np.asarray(d.get("hidden", [])),
                                     metadata=d.get("metadata") or {})
        for name, d in data.items()
    }
