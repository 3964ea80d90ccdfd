"""Writes for the model registry (ranked checkpoints of every model family) and the inference history.

Registry rules, per model family (ml.models.specs):

- each checkpoint has a validation metric (higher is better; VALIDATION_METRIC names it per model);
- only the top ``RegistrySettings.keep_top_n`` (admin, default 5) are kept: the others lose their
  file and their row. The live (active) checkpoint is never pruned, so a rollback survives;
- the live checkpoint is the pinned one (an admin rollback) if any, else the best-ranked one;
- loading walks that order; a missing, corrupt or incompatible file is logged, its reason stored
  in ``load_error``, and the next one is tried. With none loadable, files found on disk are
  registered, and only then is a new checkpoint trained (first start).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from apps.market.convert import ms_to_datetime
from apps.market.models import Instrument
from apps.predictions.models import ModelCheckpoint, Prediction
from apps.predictions.selectors import checkpoint_ranked, registry_settings_get
from ml.features.package import pack_input, unpack_input  # noqa: F401  (the history's public API)

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
CNN_NAME = "cnn"
# Candle models learn from 1m history that ends before the recorded order-book session (2024-08-08
# 23:54 UTC), so the replay stays out of sample.
CNN_TRAIN_END_MS = 1723158000000  # 2024-08-08 23:00:00 UTC
VALIDATION_METRIC = {"cnn": "val_macro_f1", "dqn": "val_mean_reward_bps", "transformer": "val_macro_f1"}


@dataclass
class Trained:
    """What a trainer returns: a model (with .config), its metrics and data range (ms)."""

    model: Any
    metrics: dict
    data_range: tuple[int, int]


def _train_family(family: str, epochs: int, progress: Progress | None) -> Trained:
    """Train ``family`` of the cascade on all the training samples (``ml.training.market_data``:
    candle history every GOGO_TRAIN_STRIDE_MIN minutes without the replay session's minutes, plus
    the USD-M order-book sessions of other days), reading the live checkpoints of the enabled
    models before it (loaded, or trained first); calibrated and measured on its validation split
    (``ml.training.live_train``). ``epochs`` 0: 6."""
    from apps.predictions.selectors import model_names_enabled
    from ml.models.live import CASCADE
    from ml.training.live_train import train_live_family
    from ml.training.market_data import training_samples

    enabled = set(model_names_enabled())
    upstream, versions = {}, {}
    for name in CASCADE[:CASCADE.index(family)]:
        if name in enabled:
            upstream[name], checkpoint = model_load_live(model_name=name, progress=progress)
            versions[name] = checkpoint.version
    samples = training_samples(str(settings.GOGO_DATA_DIR), settings.GOGO_TRAIN_STRIDE_MIN)
    result = train_live_family(family, samples, upstream, epochs=epochs or 6,
                               max_train=settings.GOGO_TRAIN_MAX_SAMPLES or None, progress=progress)
    result.metrics["upstream_checkpoints"] = versions
    return Trained(result.model, result.metrics, result.data_range)


def _train_cnn(progress: Progress | None) -> Trained:
    return _train_family("cnn", settings.GOGO_CNN_EPOCHS, progress)


def _train_transformer(progress: Progress | None) -> Trained:
    # GOGO_TRANSFORMER_EPOCHS unset: the CNN's (the tests lower that one)
    return _train_family("transformer", settings.GOGO_TRANSFORMER_EPOCHS or settings.GOGO_CNN_EPOCHS, progress)


def _train_dqn(progress: Progress | None) -> Trained:
    return _train_family("dqn", settings.GOGO_DQN_EPISODES, progress)  # episodes = epochs: one pass each


TRAINERS: dict[str, Callable[[Progress | None], Trained]] = {
    "cnn": _train_cnn, "transformer": _train_transformer, "dqn": _train_dqn}


def checkpoint_register(*, model_name: str, version: str, path: Path, sha256: str, config: dict, metrics: dict,
                        data_range: tuple[int, int], validation_metric: float | None,
                        shadow: bool | None = None) -> ModelCheckpoint | None:
    """Register a saved checkpoint file and prune the model's ranking to the top N.

    Where it goes: with no live checkpoint of the model (first start), the best-ranked one goes
    live (the pinned one if any). With a live one, the new checkpoint goes to SHADOW (``shadow``
    None or True; a shadow it supersedes is retired) and only a promotion
    (``apps.predictions.promotion``) or an admin makes it live; ``shadow=False`` keeps it RETIRED
    (ranked, a rollback target). The ranking key ``net_edge_bps`` is read from
    ``metrics["validation"]["net_edge_bps_per_trade"]["mean"]`` when present.

    Returns the row, or None when it ranked below the top N and was deleted at once. A NaN /
    infinite metric is stored as no metric (ranks last; Postgres would sort NaN above every number)."""
    if validation_metric is not None and not math.isfinite(validation_metric):
        validation_metric = None
    metrics = _finite(metrics)  # jsonb refuses NaN / Infinity
    with transaction.atomic():
        checkpoint, _ = ModelCheckpoint.objects.update_or_create(
            model_name=model_name, version=version,
            defaults={
                "path": str(path), "sha256": sha256, "config": config, "metrics": metrics,
                "validation_metric": validation_metric, "net_edge_bps": net_edge_of(metrics),
                "data_start": ms_to_datetime(data_range[0]), "data_end": ms_to_datetime(data_range[1]), "load_error": "",
            },
        )
        live = ModelCheckpoint.objects.filter(model_name=model_name, is_active=True).exclude(pk=checkpoint.pk).first()
        if live is None:
            _activate(model_name, _live_choice(model_name))
        elif shadow is not False:
            _to_shadow(checkpoint)
        checkpoint_prune(model_name=model_name)
    return ModelCheckpoint.objects.filter(pk=checkpoint.pk).first()


def net_edge_of(metrics: dict) -> float | None:
    """``metrics["validation"]["net_edge_bps_per_trade"]["mean"]`` (bps per trade after costs)
    when it is a finite number, else None (a checkpoint trained before it was measured)."""
    edge = ((metrics or {}).get("validation") or {}).get("net_edge_bps_per_trade")
    value = edge.get("mean") if isinstance(edge, dict) else None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _to_shadow(checkpoint: ModelCheckpoint) -> None:
    """Make ``checkpoint`` its model's shadow; a previous shadow is retired (superseded)."""
    previous = ModelCheckpoint.objects.filter(model_name=checkpoint.model_name, state=ModelCheckpoint.State.SHADOW
                                              ).exclude(pk=checkpoint.pk)
    for old in previous:
        evidence = {**old.evidence, "decision": "superseded", "why": f"superseded by the newer shadow {checkpoint.version}"}
        ModelCheckpoint.objects.filter(pk=old.pk).update(state=ModelCheckpoint.State.RETIRED, evidence=evidence)
    ModelCheckpoint.objects.filter(pk=checkpoint.pk).update(
        state=ModelCheckpoint.State.SHADOW, evidence={"decision": "pending", "since": datetime.now(UTC).isoformat()})
    logger.info("checkpoint %s in shadow", checkpoint)


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float inside dicts / lists replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def checkpoint_prune(*, model_name: str, keep: int | None = None) -> list[str]:
    """Delete (file and row) every checkpoint of ``model_name`` outside the top ``keep``
    (default: RegistrySettings.keep_top_n), except the live, the pinned and the shadow one, and
    the live one's rollback target (``replaced``). Returns the deleted versions. A file that is
    already gone is not an error."""
    keep = registry_settings_get().keep_top_n if keep is None else keep
    deleted = []
    live = ModelCheckpoint.objects.filter(model_name=model_name, is_active=True).first()
    for checkpoint in checkpoint_ranked(model_name=model_name)[keep:]:
        if (checkpoint.is_active or checkpoint.pinned or checkpoint.state == ModelCheckpoint.State.SHADOW
                or (live is not None and live.replaced_id == checkpoint.pk)):
            continue
        Path(checkpoint.path).unlink(missing_ok=True)
        checkpoint.delete()
        deleted.append(checkpoint.version)
        logger.info("pruned checkpoint %s:%s (%s)", model_name, checkpoint.version, checkpoint.path)
    return deleted


def checkpoint_rollback(*, checkpoint: ModelCheckpoint) -> ModelCheckpoint:
    """Pin ``checkpoint`` as its model's live one (admin rollback; a shadow leaves shadow). The
    inference paths load it within seconds (``worker_models``) or at the engine's next start."""
    with transaction.atomic():
        ModelCheckpoint.objects.filter(model_name=checkpoint.model_name, pinned=True).update(pinned=False)
        ModelCheckpoint.objects.filter(pk=checkpoint.pk).update(pinned=True)
        _activate(checkpoint.model_name, checkpoint.pk)
    logger.warning("rollback: %s pinned as the live checkpoint", checkpoint)
    checkpoint.refresh_from_db()
    return checkpoint


def checkpoint_promote(*, checkpoint: ModelCheckpoint, evidence: dict) -> ModelCheckpoint:
    """Make ``checkpoint`` (a shadow, or any kept one by an admin) live, unpinning the model, with
    ``evidence`` (the promotion check, or who promoted it) stored on it; the checkpoint it replaces
    is retired and kept as its one-click rollback target (``replaced``). Returns the row."""
    with transaction.atomic():
        previous = ModelCheckpoint.objects.filter(model_name=checkpoint.model_name, is_active=True).first()
        ModelCheckpoint.objects.filter(model_name=checkpoint.model_name, pinned=True).update(pinned=False)
        _activate(checkpoint.model_name, checkpoint.pk)
        replaced = previous.pk if previous is not None and previous.pk != checkpoint.pk else checkpoint.replaced_id
        ModelCheckpoint.objects.filter(pk=checkpoint.pk).update(evidence=_finite(evidence), replaced=replaced)
    logger.warning("promoted %s to live (replacing %s): %s", checkpoint, previous, evidence.get("why", ""))
    checkpoint.refresh_from_db()
    return checkpoint


def checkpoint_retire(*, checkpoint: ModelCheckpoint, evidence: dict) -> ModelCheckpoint:
    """A shadow that is not promoted: RETIRED with ``evidence`` (the refusal and its figures)."""
    ModelCheckpoint.objects.filter(pk=checkpoint.pk, is_active=False).update(
        state=ModelCheckpoint.State.RETIRED, evidence=_finite(evidence))
    checkpoint.refresh_from_db()
    return checkpoint


def checkpoint_unpin(*, model_name: str) -> ModelCheckpoint | None:
    """Drop an admin pin: the best-ranked checkpoint not in shadow becomes live. Returns it (or None)."""
    with transaction.atomic():
        ModelCheckpoint.objects.filter(model_name=model_name, pinned=True).update(pinned=False)
        pk = _live_choice(model_name)
        _activate(model_name, pk)
    return ModelCheckpoint.objects.filter(pk=pk).first() if pk else None


def _live_choice(model_name: str) -> int | None:
    pinned = ModelCheckpoint.objects.filter(model_name=model_name, pinned=True).values_list("pk", flat=True).first()
    if pinned:
        return pinned
    ranked = [c for c in checkpoint_ranked(model_name=model_name) if c.state != ModelCheckpoint.State.SHADOW]
    return ranked[0].pk if ranked else None


def _activate(model_name: str, pk: int | None) -> None:
    """Checkpoint ``pk`` becomes the model's only LIVE (is_active) row; the previous live one is retired."""
    ModelCheckpoint.objects.filter(model_name=model_name, is_active=True).exclude(pk=pk).update(
        is_active=False, state=ModelCheckpoint.State.RETIRED)
    if pk is not None:
        ModelCheckpoint.objects.filter(pk=pk).update(is_active=True, state=ModelCheckpoint.State.LIVE)


def model_train_and_register(*, model_name: str, progress: Progress | None = None,
                             shadow: bool | None = None) -> ModelCheckpoint | None:
    """Train ``model_name`` on its default data (see each trainer), save and register the checkpoint
    (live at first start, else in shadow unless ``shadow`` is False: ``checkpoint_register``).

    Raises:
        KeyError: an unknown model. FileNotFoundError: training data missing from GOGO_DATA_DIR.
    """
    from ml.models.checkpoint import save_checkpoint

    trained = TRAINERS[model_name](progress)
    config = trained.model.config
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    version = f"{config.version}-{trained.data_range[1]}-{stamp}"
    path = Path(settings.GOGO_CHECKPOINT_DIR) / f"{model_name}-{version}.pt"
    sha256 = save_checkpoint(path, trained.model, config, trained.metrics, trained.data_range)
    return checkpoint_register(
        model_name=model_name, version=version, path=path, sha256=sha256, config=config.to_dict(),
        metrics=trained.metrics, data_range=trained.data_range,
        validation_metric=trained.metrics.get(VALIDATION_METRIC[model_name]), shadow=shadow,
    )


def cnn_train_and_register(*, progress: Progress | None = None) -> ModelCheckpoint | None:
    """Train and register a CNN checkpoint (see model_train_and_register)."""
    return model_train_and_register(model_name=CNN_NAME, progress=progress)


def model_load_shadow(*, model_name: str, device=None):
    """``model_name``'s shadow checkpoint loaded for inference: (model in eval mode, ModelCheckpoint),
    or None when there is none or its file cannot be loaded (logged, ``load_error`` stored)."""
    from ml.models.checkpoint import CheckpointError
    from ml.models.device import select_device

    checkpoint = ModelCheckpoint.objects.filter(model_name=model_name, state=ModelCheckpoint.State.SHADOW).first()
    if checkpoint is None:
        return None
    try:
        return _load_cached(checkpoint, model_name, device or select_device(), slot="shadow"), checkpoint
    except CheckpointError as exc:
        logger.error("shadow checkpoint %s unusable: %s", checkpoint, exc)
        ModelCheckpoint.objects.filter(pk=checkpoint.pk).update(load_error=str(exc)[:2000])
        return None


def model_load_live(*, model_name: str, device=None, progress: Progress | None = None, train_if_missing: bool = True):
    """Load ``model_name``'s live checkpoint: pinned first, then by rank (module docstring).

    Returns:
        (model on ``device`` in eval mode, ModelCheckpoint), the checkpoint now active.

    Raises:
        LookupError: no checkpoint loads and ``train_if_missing`` is False.
    """
    from ml.models.checkpoint import CheckpointError
    from ml.models.device import select_device

    device = device or select_device()
    for attempt in range(3):  # registered rows, then files found on disk, then a new training
        order = _load_order(model_name)
        for checkpoint in order:
            try:
                model = _load_cached(checkpoint, model_name, device)
            except CheckpointError as exc:
                logger.error("checkpoint %s unusable, trying the next best: %s", checkpoint, exc)
                ModelCheckpoint.objects.filter(pk=checkpoint.pk).update(load_error=str(exc)[:2000])
                continue
            if checkpoint.load_error:
                ModelCheckpoint.objects.filter(pk=checkpoint.pk).update(load_error="")
            if not checkpoint.is_active or any(c.is_active for c in order if c.pk != checkpoint.pk):
                _activate(model_name, checkpoint.pk)  # (already the only active row: nothing to write)
                checkpoint.refresh_from_db()
            return model, checkpoint
        if attempt == 0:
            model_discover_files(model_name=model_name)
        elif train_if_missing:
            logger.info("no usable %s checkpoint: training one", model_name)
            model_train_and_register(model_name=model_name, progress=progress, shadow=False)  # nothing else loads
        else:
            break
    raise LookupError(f"no loadable {model_name} checkpoint")


_LOADED: dict[str, tuple[tuple, object]] = {}  # "<model>:<slot>" -> (checkpoint file key, model): the last one loaded


def _load_cached(checkpoint: ModelCheckpoint, model_name: str, device, slot: str = "live"):
    """``load_checkpoint`` of the row's file, or the module this process loaded from the same file
    (path, size, modification time, sha256) on the same device. Every caller in the process gets
    that one module in eval mode: callers must not train it in place (``ml.training.fine_tune``
    trains a copy). Saves ~15 ms per model each time the models are loaded again (each backtest,
    the engine after ``bootstrap``). Raises CheckpointError as ``load_checkpoint``."""
    from ml.models.checkpoint import CheckpointError, load_checkpoint

    path = Path(checkpoint.path)
    try:
        st = path.stat()
    except OSError as exc:
        raise CheckpointError(f"checkpoint not found: {path}") from exc
    key = (str(path), st.st_size, st.st_mtime_ns, checkpoint.sha256, str(device))
    hit = _LOADED.get(f"{model_name}:{slot}")
    if hit is not None and hit[0] == key:
        return hit[1]
    model, _meta = load_checkpoint(path, model_name=model_name, device=device)
    _LOADED[f"{model_name}:{slot}"] = (key, model)
    return model


def _load_order(model_name: str) -> list[ModelCheckpoint]:
    """The live one (pinned or promoted) first, then the ranking; a shadow never (it has not earned it)."""
    ranked = [c for c in checkpoint_ranked(model_name=model_name) if c.state != ModelCheckpoint.State.SHADOW]
    return sorted(ranked, key=lambda c: (not c.pinned, not c.is_active))  # stable within each group


def cnn_load_live(*, progress: Progress | None = None):
    """The live CNN (see model_load_live). Returns (model, ModelCheckpoint)."""
    return model_load_live(model_name=CNN_NAME, progress=progress)


def models_load_enabled(*, progress: Progress | None = None, device=None) -> dict[str, tuple]:
    """Every enabled model's live (model, ModelCheckpoint), training first ones where needed."""
    from apps.predictions.selectors import model_names_enabled

    return {name: model_load_live(model_name=name, progress=progress, device=device) for name in model_names_enabled()}


def model_discover_files(*, model_name: str) -> list[ModelCheckpoint]:
    """Register ``<model_name>-*.pt`` files in GOGO_CHECKPOINT_DIR the registry does not know (e.g.
    after a database reset); unloadable files are logged and skipped. Returns the new rows kept."""
    from ml.models.checkpoint import CheckpointError, file_sha256, load_checkpoint

    known = set(ModelCheckpoint.objects.filter(model_name=model_name).values_list("path", flat=True))
    found = []
    for path in sorted(Path(settings.GOGO_CHECKPOINT_DIR).glob(f"{model_name}-*.pt")):
        if str(path) in known:
            continue
        try:
            _model, meta = load_checkpoint(path, model_name=model_name)
        except CheckpointError as exc:
            logger.error("ignoring checkpoint file %s: %s", path, exc)
            continue
        row = checkpoint_register(
            model_name=model_name, version=path.stem.removeprefix(f"{model_name}-"), path=path,
            sha256=file_sha256(path), config=meta["config"], metrics=meta["metrics"],
            data_range=tuple(meta["data_range"]), validation_metric=meta["metrics"].get(VALIDATION_METRIC[model_name]),
            shadow=False,
        )
        if row is not None:
            found.append(row)
    return found


def prediction_record(*, instrument: Instrument, model_name: str, checkpoint: ModelCheckpoint | None,
                      ts_event_ms: int, completeness: dict[str, float], output=None, reason: str = "",
                      input_package: bytes | None = None) -> Prediction:
    """Store an inference (``output`` is an ml ModelOutput) or a skip with its reason; idempotent."""
    return prediction_record_many(instrument=instrument, ts_event_ms=ts_event_ms, completeness=completeness, items=[
        PredictionItem(model_name, checkpoint, output, reason, input_package)])[0]


@dataclass
class PredictionItem:
    """One model's result at one second: an output (ModelOutput) or a skip reason; ``shadow``: made
    by the model's shadow checkpoint (stored beside the live one's, never traded on)."""

    model_name: str
    checkpoint: ModelCheckpoint | None
    output: Any = None
    reason: str = ""
    input_package: bytes | None = None
    shadow: bool = False


_PREDICTION_FIELDS = ("checkpoint", "status", "reason", "action", "prob_buy", "prob_sell", "prob_hold", "confidence",
                      "completeness", "output", "input_package")


def prediction_record_many(*, instrument: Instrument, ts_event_ms: int, completeness: dict[str, float],
                           items: list[PredictionItem]) -> list[Prediction]:
    """Store several models' results for one second in one upsert statement (INSERT ... ON CONFLICT
    on the natural key instrument, model_name, shadow, ts_event): re-running a second replaces its rows."""
    ts_event = ms_to_datetime(ts_event_ms)
    rows = []
    for item in items:
        row = Prediction(instrument=instrument, model_name=item.model_name, checkpoint=item.checkpoint,
                         shadow=item.shadow, ts_event=ts_event, completeness=completeness, reason=item.reason[:255],
                         input_package=item.input_package, status=Prediction.Status.SKIPPED, action="", output={})
        if item.output is not None:
            o = item.output
            details = o.to_dict()
            details.pop("hidden")
            row.status, row.action, row.confidence, row.output = Prediction.Status.PREDICTED, o.action, o.confidence, details
            row.prob_buy, row.prob_sell, row.prob_hold = o.probs["BUY"], o.probs["SELL"], o.probs["HOLD"]
        rows.append(row)
    return Prediction.objects.bulk_create(rows, update_conflicts=True,
                                          unique_fields=["instrument", "model_name", "shadow", "ts_event"],
                                          update_fields=list(_PREDICTION_FIELDS))


def prediction_prune(*, now: datetime | None = None) -> dict[str, int]:
    """Apply the history retention of RegistrySettings: delete predictions older than
    ``history_max_age_days``, then, per instrument, model and live / shadow, all but the newest
    ``history_max_count``. Returns {"by_age": n, "by_count": n} rows deleted."""
    cfg = registry_settings_get()
    now = now or datetime.now(UTC)
    by_age = by_count = 0
    if cfg.history_max_age_days:
        _, deleted = Prediction.objects.filter(ts_event__lt=now - timedelta(days=cfg.history_max_age_days)).delete()
        by_age = deleted.get(Prediction._meta.label, 0)
    if cfg.history_max_count:
        groups = Prediction.objects.values_list("instrument_id", "model_name", "shadow").distinct()
        for instrument_id, model_name, shadow in groups:  # a shadow's calls do not crowd out the live ones
            rows = Prediction.objects.filter(instrument_id=instrument_id, model_name=model_name, shadow=shadow)
            cutoff = rows.order_by("-ts_event").values_list("ts_event", flat=True)[cfg.history_max_count:][:1]
            if cutoff:
                _, deleted = rows.filter(ts_event__lte=cutoff[0]).delete()
                by_count += deleted.get(Prediction._meta.label, 0)
    if by_age or by_count:
        logger.info("inference history retention: %d rows by age, %d by count", by_age, by_count)
    return {"by_age": by_age, "by_count": by_count}


def registry_defaults_ensure() -> None:
    """Settings row, one ModelSetting per model family (enabled), and the hourly retention task in
    django-celery-beat (``workers.history.prune_inference_history``) and the learning loop's tasks
    (``apps.predictions.schedule.learning_schedule_ensure``); idempotent, admin edits kept."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from apps.predictions.models import ModelSetting
    from apps.predictions.schedule import learning_schedule_ensure
    from ml.models.specs import MODEL_NAMES

    registry_settings_get()
    for name in MODEL_NAMES:
        ModelSetting.objects.get_or_create(model_name=name)
    every_hour, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    for name, task in (("inference history retention", "workers.history.prune_inference_history"),
                       ("COB frame retention", "workers.market.prune_cob_frames")):
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": every_hour, "queue": "default"})
    learning_schedule_ensure()
