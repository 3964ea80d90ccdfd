"""Save and load model checkpoints: weights plus the config that rebuilds the model.

Every model family of :mod:`ml.models.specs` (cnn, transformer, dqn: one ``MarketModel`` class,
``config["family"]`` picks the family) uses this one format.

File content (``torch.save`` of a plain dict, loadable with ``torch.load(weights_only=True)``):

================  =====================================================================
key               value
================  =====================================================================
format_version    int, :data:`FORMAT_VERSION` (2: the market families with their calibration;
                  format 1 files held the retired candle-only models and are refused)
model_class       the module's class name, "MarketModel"
config            <Config>.to_dict() (``family`` names the model)
state_dict        parameter and buffer tensors
serving           ``ml.models.live.Serving.to_dict()``: {"calibration": Calibration.to_dict(),
                  "upstream": [model names]}
metrics           JSON-like dict from training (floats, ints, strings, nested dicts)
data_range        {"start_ms": int, "end_ms": int}: the candle open times trained on
created           ISO 8601 UTC string
================  =====================================================================
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ml.models.live import Serving, attach_serving, serving_of
from ml.models.specs import SPECS

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2


class CheckpointError(Exception):
    """A checkpoint file is missing, corrupt, truncated or incompatible with this code."""


def save_checkpoint(path: str | Path, model: nn.Module, config: Any,
                    metrics: dict[str, Any], data_range: tuple[int, int]) -> str:
    """Write a checkpoint atomically (temp file + rename).

    Args:
        model: a model of ml.models.specs with its ``serving`` (calibration, upstream).
        data_range: (start_ms, end_ms) of the training data, candle open times.

    Returns:
        sha256 hex digest of the written file.

    Raises:
        ValueError: metrics are not JSON-serializable, config differs from model.config, the
            model is no family of ml.models.specs, or it has no calibration.
    """
    if config != model.config:
        raise ValueError("config does not match model.config")
    spec = SPECS.get(getattr(config, "family", ""))
    if spec is None or not isinstance(model, spec.module_class):
        raise ValueError(f"{type(model).__name__} is not a model family of ml.models.specs")
    serving = serving_of(model).to_dict()
    try:
        plain_metrics = json.loads(json.dumps(metrics))  # plain types only (weights_only load)
    except TypeError as exc:
        raise ValueError(f"metrics are not JSON-serializable: {exc}") from exc
    payload = {
        "format_version": FORMAT_VERSION,
        "model_class": type(model).__name__,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "serving": json.loads(json.dumps(serving)),
        "metrics": plain_metrics,
        "data_range": {"start_ms": int(data_range[0]), "end_ms": int(data_range[1])},
        "created": datetime.now(UTC).isoformat(),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    digest = file_sha256(path)
    logger.info("saved checkpoint %s (%d bytes, sha256 %s)", path, path.stat().st_size, digest)
    return digest


def load_checkpoint(path: str | Path, *, model_name: str | None = None,
                    device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model from a checkpoint file alone (eval mode, on ``device``).

    Args:
        model_name: when given ("cnn", "dqn", ...), a file of another model family is refused.

    Returns:
        (model, meta): the model with its ``serving`` (calibration, upstream names) set; meta keys
        format_version, config (plain dict, JSON-serializable; the config object itself is
        ``model.config``), model_class, metrics, serving, data_range ((start_ms, end_ms)),
        created, sha256, size_bytes.

    Raises:
        CheckpointError: missing, unreadable, corrupt or truncated file, another format version
            (format 1: a retired candle-only model, retrain), or a config / state_dict /
            calibration that does not fit this code.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        # weights_only: no arbitrary pickled code runs while loading.
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or truncated zip files
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated: {exc}") from exc
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path}: expected a dict, got {type(payload).__name__}")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path}: format {version!r} (model {payload.get('model_class')!r}); this "
                              f"code reads format {FORMAT_VERSION} (the market families with their calibration): "
                              "retrain it")
    family = (payload.get("config") or {}).get("family") if isinstance(payload.get("config"), dict) else None
    spec = SPECS.get(family) if isinstance(family, str) else None
    if spec is None or payload.get("model_class") != spec.module_class.__name__:
        raise CheckpointError(f"checkpoint {path}: model {payload.get('model_class')!r} family {family!r}, this code "
                              f"reads {[s.module_class.__name__ for s in SPECS.values()][0]} families {list(SPECS)}")
    if model_name is not None and spec.name != model_name:
        raise CheckpointError(f"checkpoint {path} holds a {spec.name!r} model, expected {model_name!r}")
    try:
        config = spec.config_class.from_dict(payload["config"])
        model = spec.module_class(config)
        model.load_state_dict(payload["state_dict"], strict=True)
        serving = Serving.from_dict(payload["serving"])
        attach_serving(model, serving.calibration, serving.upstream)
        data_range = (int(payload["data_range"]["start_ms"]), int(payload["data_range"]["end_ms"]))
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} is incompatible with this code: {exc}") from exc
    model.to(device).eval()
    meta = {
        "format_version": version,
        "model_class": spec.module_class.__name__,
        "config": config.to_dict(),
        "metrics": payload.get("metrics", {}),
        "serving": serving.to_dict(),
        "data_range": data_range,
        "created": payload.get("created"),
        "sha256": file_sha256(path),
        "size_bytes": path.stat().st_size,
    }
    return model, meta


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
