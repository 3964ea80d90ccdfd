"""Writes for the model registry and the inference history."""
from __future__ import annotations

import io
import logging
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction

from apps.market.convert import ms_to_datetime
from apps.market.models import Instrument
from apps.predictions.models import ModelCheckpoint, Prediction

logger = logging.getLogger(__name__)

CNN_NAME = "cnn"
# The CNN learns from 1m history that ends before the recorded order-book session (2024-08-08
# 23:54 UTC), so the replay stays out of sample.
CNN_TRAIN_END_MS = 1723158000000  # 2024-08-08 23:00:00 UTC


def checkpoint_register(*, model_name: str, version: str, path: Path, sha256: str, config: dict,
                        metrics: dict, data_range: tuple[int, int], validation_metric: float | None,
                        activate: bool = True) -> ModelCheckpoint:
    """Register a saved checkpoint file; with ``activate`` it becomes the model's live one."""
    with transaction.atomic():
        if activate:
            ModelCheckpoint.objects.filter(model_name=model_name, is_active=True).update(is_active=False)
        checkpoint, _ = ModelCheckpoint.objects.update_or_create(
            model_name=model_name,
            version=version,
            defaults={
                "path": str(path), "sha256": sha256, "config": config, "metrics": metrics,
                "validation_metric": validation_metric, "data_start": ms_to_datetime(data_range[0]),
                "data_end": ms_to_datetime(data_range[1]), "is_active": activate,
            },
        )
    return checkpoint


def cnn_train_and_register(*, progress: Callable[[float, str], None] | None = None) -> ModelCheckpoint:
    """Train the multi-timeframe CNN on the recorded ETHUSDT 1m/1h/1d history, save, register.

    Raises FileNotFoundError when the history files are missing from GOGO_DATA_DIR.
    """
    from ml.models.checkpoint import save_checkpoint
    from ml.models.cnn import CnnConfig
    from ml.training.cnn_train import default_training_history, train_cnn

    history = default_training_history(settings.GOGO_DATA_DIR, symbol="ETHUSDT")
    config = CnnConfig()
    kwargs = {"epochs": settings.GOGO_CNN_EPOCHS} if settings.GOGO_CNN_EPOCHS else {}
    result = train_cnn(history, config, train_end_ms=CNN_TRAIN_END_MS, progress=progress, **kwargs)
    version = f"{config.version}-{result.data_range[1]}"
    path = Path(settings.GOGO_CHECKPOINT_DIR) / f"{CNN_NAME}-{version}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    sha256 = save_checkpoint(path, result.model, config, result.metrics, result.data_range)
    return checkpoint_register(
        model_name=CNN_NAME, version=version, path=path, sha256=sha256, config=_config_dict(config),
        metrics=result.metrics, data_range=result.data_range,
        validation_metric=result.metrics.get("val_macro_f1"),
    )


def _config_dict(config) -> dict:
    from dataclasses import asdict

    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def cnn_load_live(*, progress: Callable[[float, str], None] | None = None):
    """Load the live CNN checkpoint, training one first if none exists (first start).

    A corrupt or missing file is logged and the next registered checkpoint is tried; when none
    loads, a new one is trained. Returns (model, ModelCheckpoint).
    """
    from ml.models.checkpoint import CheckpointError, load_checkpoint

    candidates = list(ModelCheckpoint.objects.filter(model_name=CNN_NAME).order_by("-is_active", "-created_at"))
    for checkpoint in candidates:
        try:
            model, _meta = load_checkpoint(Path(checkpoint.path))
        except (CheckpointError, FileNotFoundError) as exc:
            logger.error("checkpoint %s unusable: %s", checkpoint, exc)
            continue
        if not checkpoint.is_active:
            ModelCheckpoint.objects.filter(model_name=CNN_NAME, is_active=True).update(is_active=False)
            ModelCheckpoint.objects.filter(pk=checkpoint.pk).update(is_active=True)
        return model, checkpoint
    checkpoint = cnn_discover_files()
    if checkpoint is None:
        logger.info("no usable %s checkpoint: training one on the recorded history", CNN_NAME)
        checkpoint = cnn_train_and_register(progress=progress)
    model, _meta = load_checkpoint(Path(checkpoint.path))
    return model, checkpoint


def cnn_discover_files() -> ModelCheckpoint | None:
    """Register checkpoint files found in GOGO_CHECKPOINT_DIR that the registry does not know
    (e.g. after a database reset); activates the newest loadable one and returns it, else None."""
    from ml.models.checkpoint import CheckpointError, load_checkpoint

    directory = Path(settings.GOGO_CHECKPOINT_DIR)
    found = None
    for path in sorted(directory.glob(f"{CNN_NAME}-*.pt"), key=lambda p: p.stat().st_mtime):
        try:
            _model, meta = load_checkpoint(path)
        except CheckpointError as exc:
            logger.error("ignoring checkpoint file %s: %s", path, exc)
            continue
        version = path.stem.removeprefix(f"{CNN_NAME}-")
        found = checkpoint_register(
            model_name=CNN_NAME, version=version, path=path, sha256=_sha256(path), config=meta["config"],
            metrics=meta["metrics"], data_range=tuple(meta["data_range"]),
            validation_metric=meta["metrics"].get("val_macro_f1"),
        )
    return found


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def pack_input(arrays: dict[str, np.ndarray]) -> bytes:
    """Compress the model input arrays (npz, then zlib level 1) for the inference history."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return zlib.compress(buffer.getvalue(), 1)


def unpack_input(blob: bytes) -> dict[str, np.ndarray]:
    """Inverse of pack_input."""
    with np.load(io.BytesIO(zlib.decompress(blob))) as data:
        return {k: data[k] for k in data.files}


def prediction_record(*, instrument: Instrument, model_name: str, checkpoint: ModelCheckpoint | None,
                      ts_event_ms: int, completeness: dict[str, float], output=None, reason: str = "",
                      input_package: bytes | None = None) -> Prediction:
    """Store an inference (``output`` is an ml ModelOutput) or a skip with its reason; idempotent."""
    defaults = {"checkpoint": checkpoint, "completeness": completeness, "reason": reason[:255],
                "input_package": input_package}
    if output is None:
        defaults.update(status=Prediction.Status.SKIPPED, action="", prob_buy=None, prob_sell=None,
                        prob_hold=None, confidence=None)
    else:
        defaults.update(status=Prediction.Status.PREDICTED, action=output.action,
                        prob_buy=output.probs["BUY"], prob_sell=output.probs["SELL"],
                        prob_hold=output.probs["HOLD"], confidence=output.confidence)
    prediction, _ = Prediction.objects.update_or_create(
        instrument=instrument, model_name=model_name, ts_event=ms_to_datetime(ts_event_ms), defaults=defaults
    )
    return prediction
