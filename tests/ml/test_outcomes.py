"""ml.outcomes: prices at an instant, labels with the CNN's fee band, PnL, Brier, calibration."""
from __future__ import annotations

import numpy as np
import pytest

from ml.outcomes import (
    HORIZONS_MS,
    LABEL_BAND,
    PriceSeries,
    brier_scores,
    direction_labels,
    pnl_bps,
    reliability_bins,
    score_predictions,
)
from ml.training.dataset import label_returns

T0 = 1_700_000_000_000


def test_labels_use_the_same_band_as_the_cnn_training_labels():
    r = np.array([-0.01, -0.002, -0.0019, 0.0, 0.002, 0.00201, 0.05])
    np.testing.assert_array_equal(direction_labels(r), label_returns(r, LABEL_BAND))
    assert LABEL_BAND == pytest.approx(0.002)


def test_a_price_is_the_last_1s_close_within_the_staleness_else_the_1m_close_at_the_boundary():
    prices = PriceSeries.from_open_times([T0, T0 + 1000, T0 + 10_000], [10.0, 11.0, 12.0], [T0], [20.0])
    got = prices.price_at(np.array([T0 + 1000, T0 + 2000, T0 + 7000, T0 + 8000, T0 + 60_000, T0 + 61_000]))
    # +8 s: the last 1 s close (+2 s) is 6 s old > 5 s; +60 s: 1 m close; +61 s: the 1 s close from +11 s is stale
    np.testing.assert_array_equal(got, [10.0, 11.0, 11.0, np.nan, 20.0, np.nan])
    assert prices.last_instant() == T0 + 60_000


def test_scores_pnl_and_brier_of_each_call():
    prices = PriceSeries.from_open_times([T0, T0 + 60_000], [100.0, 101.0], [], [])
    probs = np.array([[0.5, 0.3, 0.2], [0.2, 0.6, 0.2], [0.1, 0.1, 0.8]])
    s = score_predictions(np.full(3, T0), np.array([0, 1, 2]), probs, HORIZONS_MS["1m"], prices)
    assert s.known.all() and s.label.tolist() == [0, 0, 0]
    assert s.correct.tolist() == [True, False, False]
    np.testing.assert_allclose(s.pnl_bps, [80.0, -120.0, 0.0])  # 100 bps move, 20 bps fees
    np.testing.assert_allclose(s.brier, [0.25 + 0.09 + 0.04, 0.64 + 0.36 + 0.04, 0.81 + 0.01 + 0.64])
    assert pnl_bps(np.array([0]), np.array([0.0])).tolist() == [-20.0]
    assert brier_scores(np.full((1, 3), 1 / 3), np.array([2]))[0] == pytest.approx(2 / 3)


def test_unknown_prices_leave_calls_unscored():
    prices = PriceSeries.from_open_times([T0], [100.0], [], [])
    s = score_predictions(np.array([T0]), np.array([0]), np.full((1, 3), 1 / 3), HORIZONS_MS["5m"], prices)
    assert not s.known[0] and not s.correct[0]


def test_reliability_bins_and_ece():
    conf = np.array([0.35, 0.35, 0.95, 0.95, 0.95, 0.95])
    correct = np.array([True, False, True, True, True, False])
    out = reliability_bins(conf, correct, n_bins=10)
    assert out["n"] == 6 and out["bins"][3]["n"] == 2 and out["bins"][9]["accuracy"] == pytest.approx(0.75)
    assert out["ece"] == pytest.approx(2 / 6 * 0.15 + 4 / 6 * 0.2)
    assert reliability_bins(np.zeros(0), np.zeros(0, dtype=bool))["ece"] is None
