"""The learning loop's training services: online fine-tune and full retrain, both evaluated on a
held-out time range of recent training cases and registered under one replacement rule.

Held-out range: the cases of the last ``val_fraction`` (default 20 %) of the case TIME range
(``ml.training.cases.heldout_split``), never trained on; training cases end one label horizon
before it.

Replacement rule: every kept checkpoint of the model (the live one included) is re-evaluated on
that same held-out range and its ``validation_metric`` replaced by the result (recorded in its
``metrics["heldout"]``), then the new checkpoint is registered with its own held-out metric. The
registry makes the best-ranked one live (unless an admin pinned one), so the new checkpoint
replaces the live one only if it beats it, and every other kept one, on the SAME range. Why is
recorded in the new checkpoint's ``metrics["replacement"]`` and in a ``TrainingRun`` row.
A full retrain without enough held-out cases falls back to its trainer's own validation split
(the registry's first-start rule).

Progress of both is stored in the cache key ``gogo:training:<model>`` ({state, kind, epoch, total,
loss, metric, fraction, message, started_at}) and published to the Channels group "dashboard" as
``{"type": "training.progress", "training": {...}}`` (the consumer forwards it as type "training").
"""
from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from apps.market.convert import datetime_to_ms
from apps.market.models import Instrument
from apps.predictions.models import ModelCheckpoint, Prediction, TrainingRun
from apps.predictions.selectors import checkpoint_ranked
from apps.predictions.services import TRAINERS, checkpoint_register, model_load_live

logger = logging.getLogger(__name__)

PROGRESS_TTL_S = 24 * 3600
DEFAULT_DAYS = 2.0  # of cases before the newest prediction
# Fine-tune epochs: settings.GOGO_FINE_TUNE_EPOCHS when set (read with getattr, no variable yet), else 3.


class ProgressReporter:
    """Writes one training's progress to the cache and the dashboard (module docstring).

    Callable as the full trainers' ``progress(fraction, message)``; :meth:`epoch` takes the
    fine-tune's ``(epoch, total, loss, metric)``."""

    def __init__(self, model_name: str, kind: str) -> None:
        self.key = f"gogo:training:{model_name}"
        self.state = {"model": model_name, "kind": kind, "state": "running", "epoch": 0, "total": None, "loss": None,
                      "metric": None, "fraction": 0.0, "message": "", "started_at": datetime.now(UTC).isoformat()}
        self._publish()

    def __call__(self, fraction: float, message: str) -> None:
        self.state.update(fraction=float(fraction), message=str(message)[:200])
        self._publish()

    def epoch(self, epoch: int, total: int, loss: float, metric: float | None) -> None:
        self.state.update(epoch=epoch, total=total, loss=loss, fraction=epoch / total,
                          metric=metric if metric is None or math.isfinite(metric) else None)
        self._publish()

    def finished(self, *, metric: float | None = None, state: str = "finished", message: str = "") -> None:
        self.state.update(state=state, fraction=1.0, message=message[:200] or self.state["message"])
        if metric is not None and math.isfinite(metric):
            self.state["metric"] = metric
        self._publish()

    def failed(self, exc: BaseException) -> None:
        self.finished(state="failed", message=f"{type(exc).__name__}: {exc}")

    def _publish(self) -> None:
        cache.set(self.key, dict(self.state), PROGRESS_TTL_S)
        try:
            from asgiref.sync import async_to_sync
            from channels.layers import get_channel_layer

            async_to_sync(get_channel_layer().group_send)("dashboard", {"type": "training.progress",
                                                                        "training": dict(self.state)})
        except Exception:  # the dashboard is optional; training goes on
            logger.warning("training progress not published", exc_info=True)


def training_progress_reporter(*, model_name: str, kind: str) -> ProgressReporter:
    """A reporter for one training run of ``model_name`` (kind "fine_tune" or "full")."""
    return ProgressReporter(model_name, kind)


def training_progress_get(*, model_name: str) -> dict | None:
    """The last progress of ``model_name``'s training (cache), or None."""
    return cache.get(f"gogo:training:{model_name}")


def _instruments(instrument: Instrument | None) -> tuple[Instrument, Instrument]:
    instrument = instrument or Instrument.objects.filter(is_traded=True, enabled=True).order_by("pk").first()
    if instrument is None:
        raise LookupError("no enabled traded instrument")
    reference = (Instrument.objects.filter(venue=instrument.venue, is_traded=False, enabled=True).order_by("pk").first()
                 or instrument)
    return instrument, reference


def _cases(model_name: str, model: Any, instrument: Instrument, reference: Instrument, days: float,
           val_fraction: float) -> tuple[Any, Any]:
    """(train, val) cases of the last ``days`` before the newest prediction of the model."""
    from apps.predictions.cases import label_horizon, training_cases_collect
    from ml.outcomes import HORIZONS_MS
    from ml.training.cases import heldout_split

    newest = (Prediction.objects.filter(instrument=instrument, model_name=model_name).order_by("-ts_event")
              .values_list("ts_event", flat=True).first())
    end_ms = datetime_to_ms(newest) + 1000 if newest else int(datetime.now(UTC).timestamp() * 1000)
    try:
        cases = training_cases_collect(model_name=model_name, model=model, instrument=instrument, reference=reference,
                                       start_ms=int(end_ms - days * 86_400_000), end_ms=end_ms)
    except ValueError:
        return None, None
    train_idx, val_idx = heldout_split(cases.times, val_fraction, embargo_ms=HORIZONS_MS[label_horizon(model_name, model)])
    return cases.subset(train_idx), cases.subset(val_idx)


def model_fine_tune(*, model_name: str, days: float | None = None, instrument: Instrument | None = None,
                    val_fraction: float = 0.2, min_cases: int = 64, epochs: int | None = None) -> TrainingRun:
    """Fine-tune the live checkpoint of ``model_name`` on the training cases of the last ``days``
    (default 2) before its newest prediction, then register it under the module's replacement rule.

    Returns the TrainingRun: state skipped (fewer than ``min_cases`` training or ``min_cases / 4``
    held-out cases), promoted, kept or failed (the error is re-raised).

    Raises:
        LookupError: no loadable live checkpoint or no traded instrument.
    """
    from ml.training.fine_tune import METRIC, fine_tune

    instrument, reference = _instruments(instrument)
    live, active = model_load_live(model_name=model_name, train_if_missing=False)
    run = TrainingRun.objects.create(model_name=model_name, kind=TrainingRun.Kind.FINE_TUNE, metric_name=METRIC[model_name],
                                     base_checkpoint=active)
    report = training_progress_reporter(model_name=model_name, kind="fine_tune")
    try:
        train, val = _cases(model_name, live, instrument, reference, days or DEFAULT_DAYS, val_fraction)
        if train is None or len(train) < min_cases or len(val) < max(2, min_cases // 4):
            detail = {"n_train": len(train or ()), "n_val": len(val or ()), "min_cases": min_cases}
            _finish(run, TrainingRun.State.SKIPPED, detail=detail, n_train=detail["n_train"], n_val=detail["n_val"])
            report.finished(state="skipped", message=f"too few cases: {detail}")
            return run
        result = fine_tune(model_name, live, train, val, epochs=epochs or getattr(settings, "GOGO_FINE_TUNE_EPOCHS", 3),
                           progress=report.epoch)
        start_ms, end_ms = int(train.times[0]), int(val.times[-1]) + 1000
        checkpoint = checkpoint_register_heldout(model_name=model_name, model=result.model, metrics=result.metrics,
                                                 data_range=(start_ms, end_ms), val=val, run=run, tag="ft")
    except Exception as exc:
        _finish(run, TrainingRun.State.FAILED, detail={"error": f"{type(exc).__name__}: {exc}"[:500]})
        report.failed(exc)
        raise
    run.refresh_from_db()
    report.finished(metric=run.candidate_metric, state=run.state, message=f"{run.state}: {run.detail.get('why', '')}")
    logger.info("fine-tune %s: %s (%s) -> %s", model_name, run.state, run.detail.get("why"), checkpoint)
    return run


def model_retrain(*, model_name: str, progress: Any = None, instrument: Instrument | None = None, days: float | None = None,
                  val_fraction: float = 0.2, min_cases: int = 64, case_epochs: int | None = None) -> ModelCheckpoint | None:
    """Full retrain of ``model_name`` from scratch on its history AND the collected training cases,
    registered under the replacement rule.

    The training cases of the last ``days`` (default 2) before the newest prediction (scored
    predictions, annotations, paper rewards; ``apps.predictions.cases``) are split in time: the
    last ``val_fraction`` is the held-out range, the rest (ending one label horizon before it) is
    trained on. Training is two stages in time order: the family's trainer on the history files
    (``services.TRAINERS``: the candle history for the CNN and DQN, the recorded session for the
    transformer), then ``case_epochs`` (default GOGO_FINE_TUNE_EPOCHS, else 3) passes over the
    training cases (``ml.training.fine_tune``, the same losses as the online fine-tune), so the
    newest data is seen last. The result is evaluated on the held-out cases and replaces the live
    checkpoint only if it beats it there (``checkpoint_register_heldout``); the case stage is
    recorded in ``metrics["case_training"]`` and ``n_train`` counts history samples plus cases.

    With fewer than ``min_cases / 4`` held-out cases (or no live checkpoint to collect cases
    with) the retrain uses the history alone and the trainer's own validation metric (the
    registry's first-start rule); with fewer than 2 training cases the case stage is skipped.
    Returns the row (None when pruned)."""
    from apps.predictions.services import model_train_and_register
    from ml.training.fine_tune import METRIC, fine_tune

    try:
        instrument, reference = _instruments(instrument)
        live, active = model_load_live(model_name=model_name, train_if_missing=False)
    except LookupError:
        live = active = None
    train, val = _cases(model_name, live, instrument, reference, days or DEFAULT_DAYS, val_fraction) if live \
        else (None, None)
    if val is None or len(val) < max(2, min_cases // 4):
        return model_train_and_register(model_name=model_name, progress=progress)
    trained = TRAINERS[model_name](progress)
    model, metrics, data_range = trained.model, dict(trained.metrics), trained.data_range
    n_history = int(metrics.get("n_train") or 0)
    if train is not None and len(train) >= 2:
        epochs = case_epochs or getattr(settings, "GOGO_FINE_TUNE_EPOCHS", 3)
        stage = fine_tune(model_name, model, train, val, epochs=epochs, progress=getattr(progress, "epoch", None))
        model = stage.model
        metrics["case_training"] = {k: v for k, v in stage.metrics.items() if k != "history"}
        metrics["n_train_history"] = n_history
        metrics["n_train"] = n_history + len(train)
        data_range = (min(data_range[0], int(train.times[0])), max(data_range[1], int(train.times[-1]) + 1000))
    run = TrainingRun.objects.create(model_name=model_name, kind=TrainingRun.Kind.FULL, metric_name=METRIC[model_name],
                                     base_checkpoint=active)
    return checkpoint_register_heldout(model_name=model_name, model=model, metrics=metrics,
                                       data_range=data_range, val=val, run=run, tag="full")


def checkpoint_register_heldout(*, model_name: str, model: Any, metrics: dict, data_range: tuple[int, int], val: Any,
                                run: TrainingRun, tag: str) -> ModelCheckpoint | None:
    """The replacement rule (module docstring): re-evaluate the kept checkpoints on the held-out
    cases ``val`` (ml.training.cases.TrainingCases), save and register ``model`` with its held-out
    metric, and record the outcome on ``run`` (state promoted / kept) and in the checkpoint's
    ``metrics["replacement"]``. Returns the new row (None when pruned at once)."""
    from ml.models.checkpoint import save_checkpoint
    from ml.training.fine_tune import METRIC, evaluate

    name = METRIC[model_name]
    heldout = {"metric": name, "range_ms": [int(val.times[0]), int(val.times[-1])], "n": len(val)}
    candidate = evaluate(model_name, model, val)
    active = ModelCheckpoint.objects.filter(model_name=model_name, is_active=True).first()
    scores = _rerank(model_name, val, heldout)
    active_metric = scores.get(active.pk) if active else None
    beats = math.isfinite(candidate) and (active_metric is None or candidate > active_metric)
    metrics = {**metrics, name: candidate, "heldout": {**heldout, "value": candidate}}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    config = model.config
    version = f"{config.version}-{tag}-{data_range[1]}-{stamp}"
    path = Path(settings.GOGO_CHECKPOINT_DIR) / f"{model_name}-{version}.pt"
    metrics["replacement"] = {"active_version": active.version if active else None, "active_metric": active_metric,
                              "candidate_metric": candidate, "beats_active": beats, "pinned": bool(active and active.pinned),
                              "rule": "candidate > live on the same held-out range"}
    sha256 = save_checkpoint(path, model, config, _plain(metrics), data_range)
    row = checkpoint_register(model_name=model_name, version=version, path=path, sha256=sha256, config=config.to_dict(),
                              metrics=metrics, data_range=data_range, validation_metric=candidate)
    live = row is not None and ModelCheckpoint.objects.filter(pk=row.pk, is_active=True).exists()
    why = (f"{name} {candidate:.4f} vs live {_fmt(active_metric)} on the held-out range: "
           + ("promoted" if live else "pinned live checkpoint kept" if active and active.pinned
              else "not better than the live one" if not beats else "another kept checkpoint ranks higher"))
    if row is not None:
        metrics["replacement"].update(promoted=live, why=why)
        ModelCheckpoint.objects.filter(pk=row.pk).update(metrics=_plain(metrics))
        row.refresh_from_db()
    _finish(run, TrainingRun.State.PROMOTED if live else TrainingRun.State.KEPT, checkpoint=row, candidate_metric=candidate,
            active_metric=active_metric, n_train=int(metrics.get("n_train") or 0), n_val=len(val),
            detail={"why": why, "heldout": heldout, "samples_per_second": metrics.get("samples_per_second")})
    return row


def _rerank(model_name: str, val: Any, heldout: dict) -> dict[int, float | None]:
    """Every kept checkpoint's metric on ``val``; stored as its validation_metric (None if it
    cannot be loaded or scored). Returns pk -> metric."""
    from ml.models.checkpoint import CheckpointError, load_checkpoint
    from ml.training.fine_tune import evaluate

    scores = {}
    with transaction.atomic():
        for checkpoint in checkpoint_ranked(model_name=model_name):
            try:
                model, _ = load_checkpoint(Path(checkpoint.path), model_name=model_name)
            except CheckpointError as exc:
                logger.warning("re-rank: %s skipped: %s", checkpoint, exc)
                continue
            value = evaluate(model_name, model, val)
            value = value if math.isfinite(value) else None
            scores[checkpoint.pk] = value
            metrics = {**checkpoint.metrics, "heldout": {**heldout, "value": value}}
            ModelCheckpoint.objects.filter(pk=checkpoint.pk).update(validation_metric=value, metrics=_plain(metrics))
    return scores


def _finish(run: TrainingRun, state: str, **fields) -> None:
    for key, value in fields.items():
        setattr(run, key, value)
    run.state, run.finished_at = state, datetime.now(UTC)
    run.detail = _plain(run.detail)
    run.save()


def _plain(value: Any) -> Any:
    from apps.predictions.services import _finite

    return _finite(value)


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"

