"""Per-window feature normalization shared by live inference and training.

Every number is computed from the rows of its own window only (the window ends at the newest
closed data), so normalization never looks at future data, and a training sample normalized
here equals the live input at the same instant.

==================  ===================================  ====================================
feature             formula                              notes
==================  ===================================  ====================================
open/high/low/      ``log(p / c_last)``                  ``c_last`` = close of the window's
close                                                    last row; 0 where p <= 0 (rows
                                                         before any data) or c_last <= 0
volume              ``log1p(v / mean(v))``               mean over the window's rows (filled
                                                         rows count, with volume 0); 0 when
                                                         the mean is 0
COB bid/ask USD     ``log1p(usd) / log1p(total)``        total = sum of all 2(2N+1) buckets
(per bucket)                                             of that frame (USD); in [0, 1],
                                                         0 when the frame is empty
imbalance_5, MAs    as is, clipped to [-1, 1]            ``(bid - ask) / (bid + ask)``
indicators          as computed (ml/features/indicators)  unitless by construction
pivot levels        ``log(price / c_last)``, ``known``   per level [support, resistance];
                                                         0 and known = 0 where NaN
==================  ===================================  ====================================

Price features are unitless log ratios (about ±0.01 over 300 1m candles, ±0.5 over 300 days);
models rescale them with a learned input normalization, not here, so that this module has no
fitted state.

All functions accept any leading batch dimensions: candles ``(..., T, 5)``, COB ``(..., T, F)``.
"""
from __future__ import annotations

import logging

import numpy as np

from ml.features.base_input import (
    CANDLE_COMPONENTS,
    COB_COMPONENT,
    N_BUCKETS,
    BaseDataInput,
)

logger = logging.getLogger(__name__)


def normalize_candles(values: np.ndarray) -> np.ndarray:
    """Normalize candle windows [o, h, l, c, v] (quote currency, base units).

    Args:
        values: (..., T, 5) raw candles, oldest first.

    Returns:
        float32 (..., T, 5): log price ratios to the last close, log1p volume ratio to the mean.

    Raises:
        ValueError: the last axis is not 5.
    """
    if values.shape[-1] != 5:
        raise ValueError(
            f"candle windows need 5 columns [o, h, l, c, v], got shape {values.shape}")
    v = values.astype(np.float64)
    prices = v[..., :4]  # (..., T, 4)
    last_close = v[..., -1:, 3:4]  # (..., 1, 1)
    ok = (prices > 0) & (last_close > 0)
    price_feat = np.log(np.divide(prices, last_close, out=np.ones_like(prices), where=ok))
    volume = v[..., 4:5]  # (..., T, 1)
    mean_vol = volume.mean(axis=-2, keepdims=True)  # (..., 1, 1)
    vol_feat = np.log1p(np.divide(volume, mean_vol, out=np.zeros_like(volume),
                                  where=mean_vol > 0))
    return np.concatenate([price_feat, vol_feat], axis=-1).astype(np.float32)


def normalize_cob(values: np.ndarray, n_buckets: int = N_BUCKETS) -> np.ndarray:
    """Normalize COB windows [bid_usd (2N+1) | ask_usd (2N+1) | imbalance_5, 4 MAs].

    Args:
        values: (..., T, 2(2N+1)+5) raw frames, sizes in USD.

    Returns:
        float32 of the same shape: bucket sizes as ``log1p(usd) / log1p(frame total)`` in
        [0, 1], imbalances clipped to [-1, 1].

    Raises:
        ValueError: the last axis does not match ``n_buckets``.
    """
    m = 2 * n_buckets + 1
    if values.shape[-1] != 2 * m + 5:
        raise ValueError(f"COB windows need {2 * m + 5} columns for N={n_buckets}, "
                         f"got shape {values.shape}")
    v = values.astype(np.float64)
    sizes = np.clip(v[..., : 2 * m], 0.0, None)  # (..., T, 2m) USD
    log_total = np.log1p(sizes.sum(axis=-1, keepdims=True))  # (..., T, 1)
    log_sizes = np.log1p(sizes)
    size_feat = np.divide(log_sizes, log_total, out=np.zeros_like(log_sizes),
                          where=log_total > 0)
    imb = np.clip(v[..., 2 * m:], -1.0, 1.0)
    return np.concatenate([size_feat, imb], axis=-1).astype(np.float32)


def normalize_input(inputs: BaseDataInput,
                    names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Normalized components of a BaseDataInput (all six, or only ``names``).

    Returns:
        name -> float32 array of the component's shape ((300, 5) candles, (300, 87) COB).

    Raises:
        KeyError: an unknown component name.
    """
    out: dict[str, np.ndarray] = {}
    for name in names or CANDLE_COMPONENTS + (COB_COMPONENT,):
        if name in CANDLE_COMPONENTS:
            out[name] = normalize_candles(inputs.components[name])
        elif name == COB_COMPONENT:
            out[name] = normalize_cob(inputs.components[name])
        else:
            raise KeyError(f"unknown component {name!r}")
    return out


def normalize_pivots(levels: np.ndarray, last_close: float) -> np.ndarray:
    """Normalize Williams pivot levels (BaseDataInput.pivots[name]).

    Args:
        levels: (L, 2) [support, resistance] prices (USD), NaN where unknown.
        last_close: close of the component's newest row (USD).

    Returns:
        float32 (L, 4): [log(support / c), log(resistance / c), support known, resistance known];
        the log ratios are 0 where the level is unknown or a price is not positive.
    """
    known = np.isfinite(levels) & (levels > 0) & (last_close > 0)
    ratio = np.log(np.divide(levels, last_close, out=np.ones_like(levels, dtype=np.float64), where=known))
    return np.concatenate([ratio, known.astype(np.float64)], axis=1).astype(np.float32)
