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
