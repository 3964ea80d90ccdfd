"""Compressed input packages for the inference history: the arrays a model read, npz + zlib."""
from __future__ import annotations

import io
import logging
import zlib

import numpy as np

logger = logging.getLogger(__name__)


def pack_input(arrays: dict[str, np.ndarray]) -> bytes:
    """Compress named arrays (npz, then zlib level 1: fast enough for every second)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return zlib.compress(buffer.getvalue(), 1)


def unpack_input(blob: bytes) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_input`. Raises zlib.error / ValueError on a corrupt blob."""
    with np.load(io.BytesIO(zlib.decompress(bytes(blob)))) as data:
        return {k: data[k] for k in data.files}
