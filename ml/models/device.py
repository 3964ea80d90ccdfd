"""Device choice, made once at start: CUDA when a GPU is visible, else the CPU."""
from __future__ import annotations

import logging
import os

import torch

logger = logging.getLogger(__name__)


def select_device(preferred: str | None = None) -> torch.device:
    """The torch device models run on.

    Args:
        preferred: "cpu" or "cuda" to force one (default: ``$GOGO_DEVICE``, else "cuda" when
            ``torch.cuda.is_available()``, else "cpu").

    Raises:
        ValueError: "cuda" was asked for and no GPU is available.
    """
    name = preferred or os.environ.get("GOGO_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False")
    return torch.device(name)


def model_device(model: torch.nn.Module) -> torch.device:
    """Device of a model's first parameter (CPU for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def candle_batch(model: torch.nn.Module, inputs, min_completeness: float) -> dict[str, torch.Tensor]:
    """The model's components of one BaseDataInput, validated and normalized, as a batch of one on
    the model's device: name -> (1, 300, C) float32.

    Raises InputShapeError (layout) or IncompleteInputError (a used component below
    ``min_completeness``), from ml.features.base_input."""
    from ml.features.normalize import normalize_input

    inputs.validate()
    names = model.config.components
    inputs.require_complete(names, min_completeness)
    feats = normalize_input(inputs, names)
    device = model_device(model)
    return {name: torch.from_numpy(feats[name]).unsqueeze(0).to(device) for name in names}  # (1, 300, C)
