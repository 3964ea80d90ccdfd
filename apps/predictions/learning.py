"""The learning loop's training services: online fine-tune and full retrain on the training cases
(scored predictions and annotations with their NET outcomes, paper round trips; plus the history
for a full retrain), measured on a held-out time range of recent cases, then sent to SHADOW.

Held-out range: the cases of the last ``val_fraction`` (default 20 %) of the case TIME range
(``ml.training.cases.heldout_split``), never trained on; training cases end one label horizon
before it.

Registration rule: every kept checkpoint of the model (the live one included) is re-measured on
that same held-out range: its ``validation_metric`` and its net edge per trade (``net_edge_bps``,
the ranking key) are replaced by the results (recorded in its ``metrics["heldout"]``); then the
new checkpoint is registered. When the model has a live checkpoint the new one goes to SHADOW:
it predicts every second beside the live one, is scored, and is promoted only when its net edge
beats the live one's on the same seconds (``apps.predictions.promotion``). A run that cannot
train (too few cases) is SKIPPED with its reason and the number of cases it needs.
A full retrain without enough held-out cases falls back to its trainer's own validation split.

Progress of both is stored in the cache key ``gogo:training:<model>`` ({state, kind, run, epoch,
total, loss, metric, fraction, message, started_at}) and published to the Channels group
"dashboard" as ``{"type": "training.progress", "training": {...}}`` (the consumer forwards it as
type "training"). "Train now" (``training_request``) queues a run for the ``training`` queue.
"""
from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
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

    def __init__(self, model_name: str, kind: str, run_id: int | None = None) -> None:
        self.key = f"gogo:training:{model_name}"
        self.state = {"model": model_name, "kind": kind, "run": run_id, "state": "running", "epoch": 0, "total": None,
                      "loss": None, "metric": None, "fraction": 0.0, "message": "", "started_at": datetime.now(UTC).isoformat()}
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


def training_progress_reporter(*, model_name: str, kind: str, run_id: int | None = None) -> ProgressReporter:
    """A reporter for one training run of ``model_name`` (kind "fine_tune" or "full"; ``run_id``
    the TrainingRun it reports on)."""
    return ProgressReporter(model_name, kind, run_id)


def training_progress_get(*, model_name: str) -> dict | None:
    """The last progress of ``model_name``'s training (cache), or None."""
    return cache.get(f"gogo:training:{model_name}")


ACTIVE_RUN_WINDOW = timedelta(seconds=3900)  # the training tasks' hard time limit: an older "running" row is stale


class TrainingBusy(Exception):
    """A training of this model is already queued or running."""


def training_request(*, model_name: str, kind: str = TrainingRun.Kind.FINE_TUNE, requested_by: str = "") -> TrainingRun:
    """"Train now": a QUEUED TrainingRun of ``model_name`` and, once committed, its task on the
    ``training`` queue (``workers.training.fine_tune_model`` or ``train_model``), which reports its
    progress like a scheduled run. The checkpoint it makes goes to shadow (module docstring).

    Raises:
        ValueError: an unknown model or kind (the message names the field).
        TrainingBusy: a run of the model is queued or running (started within ACTIVE_RUN_WINDOW).
    """
    from ml.models.specs import MODEL_NAMES
    from workers.training import fine_tune_model, train_model

    if model_name not in MODEL_NAMES:
        raise ValueError(f"model: unknown model {model_name!r}, expected one of {list(MODEL_NAMES)}")
    if kind not in TrainingRun.Kind.values:
        raise ValueError(f"kind: expected one of {TrainingRun.Kind.values}, got {kind!r}")
    with transaction.atomic():
        busy = (TrainingRun.objects.select_for_update()
                .filter(model_name=model_name, state__in=(TrainingRun.State.QUEUED, TrainingRun.State.RUNNING),
                        started_at__gte=datetime.now(UTC) - ACTIVE_RUN_WINDOW).first())
        if busy is not None:
            raise TrainingBusy(f"{model_name}: training run {busy.pk} is already {busy.state}")
        run = TrainingRun.objects.create(model_name=model_name, kind=kind, state=TrainingRun.State.QUEUED,
                                         requested_by=requested_by[:150])
        training_progress_reporter(model_name=model_name, kind=kind, run_id=run.pk)(0.0, "queued")  # before it runs
        task = fine_tune_model if kind == TrainingRun.Kind.FINE_TUNE else train_model
        transaction.on_commit(lambda: task.apply_async((model_name,), {"run_id": run.pk}, queue="training"))
    logger.info("train now: %s %s queued by %s (run %d)", kind, model_name, requested_by or "?", run.pk)
    return run


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
                    val_fraction: float = 0.2, min_cases: int = 64, epochs: int | None = None,
                    run: TrainingRun | None = None) -> TrainingRun:
    """Fine-tune the live checkpoint of ``model_name`` on the training cases of the last ``days``
    (default 2) before its newest prediction (scored predictions and annotations with their net
    outcomes, paper round trips; ``apps.predictions.cases``), then register it under the module's
    rule: to shadow when a live checkpoint exists.

    ``run``: a queued TrainingRun to carry out ("Train now"); else one is created.

    Returns the TrainingRun: state skipped (fewer than ``min_cases`` training or ``min_cases / 4``
    held-out cases: ``reason`` says so and ``cases_needed`` holds the total it needs), shadow,
    promoted (no live one existed) or failed (the error is re-raised).

    Raises:
        LookupError: no loadable live checkpoint or no traded instrument.
    """
    from ml.training.fine_tune import METRIC, fine_tune

    run = _run_start(run, model_name, TrainingRun.Kind.FINE_TUNE)
    report = training_progress_reporter(model_name=model_name, kind="fine_tune", run_id=run.pk)
    try:
        instrument, reference = _instruments(instrument)
        live, active = model_load_live(model_name=model_name, train_if_missing=False)
        TrainingRun.objects.filter(pk=run.pk).update(metric_name=METRIC[model_name], base_checkpoint=active)
        run.refresh_from_db()
        report(0.02, "collecting training cases")
        train, val = _cases(model_name, live, instrument, reference, days or DEFAULT_DAYS, val_fraction)
        if _skip_if_too_few(run, report, train, val, min_cases):
            return run
        result = fine_tune(model_name, live, train, val, epochs=epochs or getattr(settings, "GOGO_FINE_TUNE_EPOCHS", 3),
                           progress=report.epoch)
        start_ms, end_ms = int(train.times[0]), int(val.times[-1]) + 1000
        checkpoint = checkpoint_register_heldout(model_name=model_name, model=result.model, metrics=result.metrics,
                                                 data_range=(start_ms, end_ms), val=val, run=run, tag="ft")
    except Exception as exc:
        _finish(run, TrainingRun.State.FAILED, reason=f"{type(exc).__name__}: {exc}"[:255],
                detail={"error": f"{type(exc).__name__}: {exc}"[:500]})
        report.failed(exc)
        raise
    run.refresh_from_db()
    report.finished(metric=run.candidate_metric, state=run.state, message=f"{run.state}: {run.detail.get('why', '')}")
    logger.info("fine-tune %s: %s (%s) -> %s", model_name, run.state, run.detail.get("why"), checkpoint)
    return run


def _run_start(run: TrainingRun | None, model_name: str, kind: str) -> TrainingRun:
    """The queued ``run`` marked running, or a new running one (a scheduled training)."""
    if run is None:
        return TrainingRun.objects.create(model_name=model_name, kind=kind)
    TrainingRun.objects.filter(pk=run.pk).update(state=TrainingRun.State.RUNNING)
    run.refresh_from_db()
    return run


def _skip_if_too_few(run: TrainingRun, report: ProgressReporter, train: Any, val: Any, min_cases: int) -> bool:
    """Finish ``run`` as skipped, saying why and how many cases it needs, when there are too few."""
    n_train, n_val, min_val = len(train or ()), len(val or ()), max(2, min_cases // 4)
    if n_train >= min_cases and n_val >= min_val:
        return False
    needed = min_cases + min_val
    reason = (f"too few training cases: {n_train} to train on (needs {min_cases}) and {n_val} held out "
              f"(needs {min_val}); {n_train + n_val} of the {needed} it needs")
    detail = {"n_train": n_train, "n_val": n_val, "min_cases": min_cases, "min_val": min_val}
    _finish(run, TrainingRun.State.SKIPPED, detail=detail, n_train=n_train, n_val=n_val, reason=reason[:255],
            cases_needed=needed)
    report.finished(state="skipped", message=reason)
    return True


def model_retrain(*, model_name: str, progress: Any = None, instrument: Instrument | None = None, days: float | None = None,
                  val_fraction: float = 0.2, min_cases: int = 64, case_epochs: int | None = None,
                  run: TrainingRun | None = None) -> TrainingRun:
    """Full retrain of ``model_name`` from scratch on its history AND the collected training cases,
    registered under the module's rule (to shadow when a live checkpoint exists).

    The training cases of the last ``days`` (default 2) before the newest prediction (scored
    predictions, annotations, paper rewards; ``apps.predictions.cases``) are split in time: the
    last ``val_fraction`` is the held-out range, the rest (ending one label horizon before it) is
    trained on. Training is two stages in time order: the family's trainer on the history files
    (``services.TRAINERS``: the candle history for the CNN and DQN, the recorded session for the
    transformer), then ``case_epochs`` (default GOGO_FINE_TUNE_EPOCHS, else 3) passes over the
    training cases (``ml.training.fine_tune``, the same losses as the online fine-tune), so the
    newest data is seen last. The result is measured on the held-out cases
    (``checkpoint_register_heldout``); the case stage is recorded in ``metrics["case_training"]``
    and ``n_train`` counts history samples plus cases.

    With fewer than ``min_cases / 4`` held-out cases (or no live checkpoint to collect cases
    with) the retrain uses the history alone and the trainer's own validation metrics (the
    registry's first-start rule); with fewer than 2 training cases the case stage is skipped.
    ``progress``: a ProgressReporter (else one is made). Returns the TrainingRun (state shadow,
    promoted when no live one existed, kept when pruned at once, or failed: the error is re-raised).
    """
    run = _run_start(run, model_name, TrainingRun.Kind.FULL)
    report = progress or training_progress_reporter(model_name=model_name, kind="full", run_id=run.pk)
    try:
        checkpoint, val = _retrain(model_name, report, instrument, days, val_fraction, min_cases, case_epochs, run)
    except Exception as exc:
        _finish(run, TrainingRun.State.FAILED, reason=f"{type(exc).__name__}: {exc}"[:255])
        report.failed(exc)
        raise
    if val is None:  # history only: the registry placed it (live at first start, else shadow)
        state = _state_of(checkpoint)
        _finish(run, state, checkpoint=checkpoint, n_train=int((checkpoint.metrics if checkpoint else {}).get("n_train")
                                                                or 0),
                candidate_metric=checkpoint.validation_metric if checkpoint else None,
                detail={"why": "history only: too few held-out cases"})
    run.refresh_from_db()
    report.finished(metric=run.candidate_metric, state=run.state, message=f"{run.state}: {run.detail.get('why', '')}")
    return run


def _retrain(model_name: str, report: Any, instrument: Instrument | None, days: float | None, val_fraction: float,
             min_cases: int, case_epochs: int | None, run: TrainingRun) -> tuple[ModelCheckpoint | None, Any]:
    from apps.predictions.services import model_train_and_register
    from ml.training.fine_tune import METRIC, fine_tune

    try:
        instrument, reference = _instruments(instrument)
        live, active = model_load_live(model_name=model_name, train_if_missing=False)
    except LookupError:
        live = active = None
    TrainingRun.objects.filter(pk=run.pk).update(metric_name=METRIC[model_name], base_checkpoint=active)
    train, val = _cases(model_name, live, instrument, reference, days or DEFAULT_DAYS, val_fraction) if live \
        else (None, None)
    if val is None or len(val) < max(2, min_cases // 4):
        return model_train_and_register(model_name=model_name, progress=report), None
    trained = TRAINERS[model_name](report)
    model, metrics, data_range = trained.model, dict(trained.metrics), trained.data_range
    n_history = int(metrics.get("n_train") or 0)
    if train is not None and len(train) >= 2:
        epochs = case_epochs or getattr(settings, "GOGO_FINE_TUNE_EPOCHS", 3)
        stage = fine_tune(model_name, model, train, val, epochs=epochs, progress=getattr(report, "epoch", None))
        model = stage.model
        metrics["case_training"] = {k: v for k, v in stage.metrics.items() if k != "history"}
        metrics["n_train_history"] = n_history
        metrics["n_train"] = n_history + len(train)
        data_range = (min(data_range[0], int(train.times[0])), max(data_range[1], int(train.times[-1]) + 1000))
    run.refresh_from_db()
    return checkpoint_register_heldout(model_name=model_name, model=model, metrics=metrics, data_range=data_range,
                                       val=val, run=run, tag="full"), val


def _state_of(checkpoint: ModelCheckpoint | None) -> str:
    if checkpoint is None:
        return TrainingRun.State.KEPT
    if checkpoint.state == ModelCheckpoint.State.LIVE:
        return TrainingRun.State.PROMOTED
    if checkpoint.state == ModelCheckpoint.State.SHADOW:
        return TrainingRun.State.SHADOW
    return TrainingRun.State.KEPT


def checkpoint_register_heldout(*, model_name: str, model: Any, metrics: dict, data_range: tuple[int, int], val: Any,
                                run: TrainingRun, tag: str) -> ModelCheckpoint | None:
    """Measure ``model`` and every kept checkpoint on the same held-out cases ``val``
    (ml.training.cases.TrainingCases), save and register ``model``, and record the outcome on
    ``run`` and in the checkpoint's ``metrics["replacement"]``.

    Each kept checkpoint's ``validation_metric`` and ``net_edge_bps`` are replaced by its figures
    on ``val`` (recorded in its ``metrics["heldout"]``), so the ranking compares them on one range.
    The new checkpoint's ``metrics["validation"]["net_edge_bps_per_trade"]`` is its held-out net
    edge unless its trainer measured one. It goes to shadow when the model has a live checkpoint
    (run state SHADOW; ``apps.predictions.promotion`` decides on live seconds), else live
    (PROMOTED). Returns the new row (None when pruned at once)."""
    from ml.models.checkpoint import save_checkpoint
    from ml.training.fine_tune import METRIC, evaluate

    name = METRIC[model_name]
    heldout = {"metric": name, "range_ms": [int(val.times[0]), int(val.times[-1])], "n": len(val)}
    candidate = evaluate(model_name, model, val)
    edge = heldout_net_edge(model_name, model, val)
    active = ModelCheckpoint.objects.filter(model_name=model_name, is_active=True).first()
    scores = _rerank(model_name, val, heldout)
    active_metric, active_edge = scores.get(active.pk, (None, None)) if active else (None, None)
    validation = dict(metrics.get("validation") or {})
    validation.setdefault("net_edge_bps_per_trade", edge)
    metrics = {**metrics, name: candidate, "validation": validation,
               "heldout": {**heldout, "value": candidate, "net_edge_bps_per_trade": edge}}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    config = model.config
    version = f"{config.version}-{tag}-{data_range[1]}-{stamp}"
    path = Path(settings.GOGO_CHECKPOINT_DIR) / f"{model_name}-{version}.pt"
    why = (f"held-out net edge {_fmt(edge['mean'])} bps/trade ({edge['n']} trades), {name} {candidate:.4f}; "
           f"live {_fmt(active_edge)} bps/trade, {name} {_fmt(active_metric)}")
    metrics["replacement"] = {"active_version": active.version if active else None, "active_metric": active_metric,
                              "active_net_edge_bps": active_edge, "candidate_metric": candidate,
                              "candidate_net_edge_bps": edge["mean"], "why": why,
                              "rule": "to shadow; promoted only by a net edge over live on the same live seconds"}
    sha256 = save_checkpoint(path, model, config, _plain(metrics), data_range)
    row = checkpoint_register(model_name=model_name, version=version, path=path, sha256=sha256, config=config.to_dict(),
                              metrics=metrics, data_range=data_range, validation_metric=candidate)
    if row is not None:
        ModelCheckpoint.objects.filter(pk=row.pk).update(net_edge_bps=edge["mean"])
        row.refresh_from_db()
    state = _state_of(row)
    _finish(run, state, checkpoint=row, candidate_metric=candidate, active_metric=active_metric,
            n_train=int(metrics.get("n_train") or 0), n_val=len(val),
            detail={"why": f"{state}: {why}", "heldout": heldout, "net_edge": edge,
                    "samples_per_second": metrics.get("samples_per_second")})
    return row


def heldout_net_edge(model_name: str, model: Any, cases: Any) -> dict:
    """Net PnL per trade of ``model``'s calls on ``cases`` (TrainingCases, time order), bps after
    the round-trip cost the cases' rewards carry (``apps.predictions.cases``): the reward of each
    BUY / SELL call (``ml.training.fine_tune.case_actions``) with a known reward; HOLD calls are
    no trade (always-HOLD = 0).

    Returns ``ml.evaluation.stats.mean_summary`` of those rewards, {"mean", "lo", "hi", "t", "p",
    "n"} (n trades; iid bootstrap); mean 0.0 with n 0 when the model never trades."""
    from ml.evaluation.stats import mean_summary
    from ml.training.cases import HOLD
    from ml.training.fine_tune import case_actions

    action = case_actions(model, cases)
    reward = cases.rewards[np.arange(len(action)), action].astype(np.float64)
    trades = reward[(action != HOLD) & np.isfinite(reward)]
    if not len(trades):
        return {"mean": 0.0, "lo": None, "hi": None, "t": None, "p": None, "n": 0}
    return mean_summary(trades)


def _rerank(model_name: str, val: Any, heldout: dict) -> dict[int, tuple[float | None, float | None]]:
    """Every kept checkpoint's metric and net edge on ``val``, stored as its validation_metric and
    net_edge_bps (None if it cannot be loaded or scored). Returns pk -> (metric, net edge)."""
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
            edge = heldout_net_edge(model_name, model, val)
            scores[checkpoint.pk] = (value, edge["mean"])
            metrics = {**checkpoint.metrics, "heldout": {**heldout, "value": value, "net_edge_bps_per_trade": edge}}
            ModelCheckpoint.objects.filter(pk=checkpoint.pk).update(validation_metric=value, net_edge_bps=edge["mean"],
                                                                    metrics=_plain(metrics))
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
