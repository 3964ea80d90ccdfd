"""Normalization against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ml.features.base_input import COMPONENT_SHAPES, BaseDataInput
from ml.features.normalize import normalize_candles, normalize_cob, normalize_input

WINDOW = np.array([
    [10.0, 11.0, 9.0, 10.0, 1.0],
    [10.0, 12.0, 10.0, 11.0, 2.0],
    [11.0, 11.0, 10.0, 10.0, 3.0],
], dtype=np.float32)  # last close 10, mean volume 2


def test_candles_are_log_ratios_to_the_last_close_and_volume_to_the_mean() -> None:
    out = normalize_candles(WINDOW)
    assert out.dtype == np.float32 and out.shape == (3, 5)
    ln = math.log
    want = [
        [0.0, ln(1.1), ln(0.9), 0.0, math.log1p(0.5)],
        [0.0, ln(1.2), 0.0, ln(1.1), math.log1p(1.0)],
        [ln(1.1), ln(1.1), 0.0, 0.0, math.log1p(1.5)],
    ]
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-7)


def test_empty_rows_become_zero_not_nan() -> None:
    window = WINDOW.copy()
    window[0] = 0.0  # a row before any data
    out = normalize_candles(window)
    np.testing.assert_array_equal(out[0, :4], 0.0)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(normalize_candles(np.zeros((4, 5), np.float32)), 0.0)


def test_batches_normalize_each_window_on_its_own() -> None:
    rng = np.random.default_rng(0)
    batch = (100 + rng.random((4, 7, 5)) * 10).astype(np.float32)  # (B, T, 5)
    out = normalize_candles(batch)
    for b in range(4):
        np.testing.assert_array_equal(out[b], normalize_candles(batch[b]))


def test_cob_sizes_are_log_shares_of_the_frame_total_and_imbalances_clipped() -> None:
    # N = 1: 3 bid buckets | 3 ask buckets | imbalance_5, ma_1s, ma_5s, ma_15s, ma_60s
    row = np.array([[0, 100, 200, 300, 0, 0, 0.5, -2.0, 1.0, 0.2, 0.0]], dtype=np.float32)
    out = normalize_cob(row, n_buckets=1)
    total = math.log1p(600.0)
    want = [0, math.log1p(100) / total, math.log1p(200) / total, math.log1p(300) / total, 0, 0,
            0.5, -1.0, 1.0, 0.2, 0.0]
    np.testing.assert_allclose(out[0], want, rtol=1e-6)
    np.testing.assert_array_equal(normalize_cob(np.zeros((2, 11), np.float32), 1), 0.0)
    with pytest.raises(ValueError, match="N=20"):
        normalize_cob(row)


def test_normalize_input_covers_every_component() -> None:
    components = {n: np.ones(s, np.float32) for n, s in COMPONENT_SHAPES.items()}
    inputs = BaseDataInput("ETHUSDT", "BTCUSDT", 0, components,
                           {n: np.ones(300, bool) for n in COMPONENT_SHAPES})
    out = normalize_input(inputs)
    assert {n: a.shape for n, a in out.items()} == COMPONENT_SHAPES
    assert all(a.dtype == np.float32 for a in out.values())
    np.testing.assert_allclose(out["primary_1m"][:, 4], math.log1p(1.0))  # v / mean(v) = 1
    assert list(normalize_input(inputs, ("primary_1d",))) == ["primary_1d"]


def test_pivot_levels_become_log_ratios_to_the_last_close_with_a_known_flag() -> None:
    from ml.features.normalize import normalize_pivots

    levels = np.array([[95.0, 110.0], [np.nan, 120.0]])
    out = normalize_pivots(levels, 100.0)
    np.testing.assert_allclose(out, [[np.log(0.95), np.log(1.1), 1, 1], [0, np.log(1.2), 0, 1]], atol=1e-6)
