"""Training samples: labels, no look-ahead, and equality with the live BaseDataInput."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.data.history import frame_to_candles
from ml.features.base_input import build_base_data_input
from ml.features.normalize import normalize_candles, normalize_input
from ml.features.rings import TIMEFRAME_MS, CandleRing
from ml.training.cnn_train import DEFAULT_TRAIN_END_MS
from ml.training.dataset import BUY, HOLD, SELL, label_returns, make_dataset

M = 60_000
T0 = 1_722_988_800_000  # 2024-08-07 00:00 UTC
COMPONENTS = {"primary_1m": "1m", "primary_1h": "1h", "primary_1d": "1d"}


def test_labels_use_the_threshold_exclusively() -> None:
    returns = np.array([0.0030, -0.0030, 0.0020, -0.0020, 0.0, 0.00201, -0.00201])
    assert label_returns(returns, 0.002).tolist() == [BUY, SELL, HOLD, HOLD, HOLD, BUY, SELL]


def minute_history(closes: np.ndarray) -> dict[str, pd.DataFrame]:
    n = len(closes)
    return {"1m": pd.DataFrame({
        "open_time": T0 + M * np.arange(n), "open": closes, "high": closes + 1,
        "low": closes - 1, "close": closes, "volume": np.ones(n)})}


def test_label_is_the_next_five_minute_return_on_a_hand_made_series() -> None:
    closes = np.full(310, 100.0)
    closes[299:310] = [100.0, 100.1, 100.0, 99.9, 100.0, 100.3, 100.3, 100, 100, 100, 100]
    # t=299: 100.3/100 = +0.3% BUY; t=300: 100.3/100.1 = +0.1998% HOLD; t=302: 100/99.9 HOLD;
    # t=304: 100/100.3 = -0.299% SELL
    data = make_dataset(minute_history(closes), start_ms=0, end_ms=T0 + 310 * M,
                        components=("primary_1m",))
    # first sample needs 300 candles (t = 299); the last needs t + 6 min <= end (t = 304)
    assert ((data.times - T0) // M).tolist() == [299, 300, 301, 302, 303, 304]
    want = closes[304:310] / closes[299:305] - 1
    np.testing.assert_allclose(data.returns, want, rtol=1e-6)
    assert data.labels.tolist() == [BUY, HOLD, HOLD, HOLD, HOLD, SELL]
    np.testing.assert_array_equal(data.batch(np.array([0]))["primary_1m"][0].numpy(),
                                  normalize_candles(minute_history(closes)["1m"].iloc[:300][
                                      ["open", "high", "low", "close", "volume"]]
                                      .to_numpy(np.float32)))


def test_gap_filled_label_candles_are_not_used() -> None:
    hist = minute_history(np.full(320, 100.0))
    hist["1m"] = hist["1m"].drop(index=[305])  # a missing candle at t + 5 for t = 300
    data = make_dataset(hist, start_ms=0, end_ms=T0 + 320 * M, components=("primary_1m",))
    assert 300 not in ((data.times - T0) // M).tolist()
    assert 299 in ((data.times - T0) // M).tolist()


def test_unknown_components_and_empty_ranges_are_refused(eth_history: dict) -> None:
    with pytest.raises(ValueError, match="primary_1s"):
        make_dataset(eth_history, start_ms=0, end_ms=T0, components=("primary_1s",))
    with pytest.raises(ValueError, match="no sample"):
        make_dataset(eth_history, start_ms=T0, end_ms=T0 + 5 * M)


def test_labels_only_use_candles_after_the_inputs_and_before_end(eth_history: dict) -> None:
    end = T0 + 400 * M
    data = make_dataset(eth_history, start_ms=T0, end_ms=end)
    assert len(data) == 400 - 5  # every minute from 00:00 until the label closes by `end`
    label_open = data.times + data.horizon_min * M  # newest candle the label reads
    for name, tf in COMPONENTS.items():
        closes_at = data.last_open[name] + TIMEFRAME_MS[tf]
        assert (closes_at <= data.times + M).all(), name  # inputs closed by the end of t
    assert (label_open >= data.times + M).all()  # label candles strictly after the inputs
    assert (label_open + M <= end).all()
    # the return is recomputed from the file's closes at t and t + 5 min
    closes = eth_history["1m"].set_index("open_time")["close"]
    want = closes.loc[label_open].to_numpy() / closes.loc[data.times].to_numpy() - 1
    np.testing.assert_allclose(data.returns, want, rtol=1e-6)


def test_samples_equal_the_live_input_at_the_same_instant(eth_history: dict) -> None:
    data = make_dataset(eth_history, start_ms=T0, end_ms=T0 + 200 * M)
    for i in (0, 61, 194):
        t = int(data.times[i])
        ts = t + M - 1000  # the last second of candle t
        rings = {}
        for tf, df in eth_history.items():
            rings[tf] = CandleRing(tf, capacity=600)
            rows = df[df["open_time"] <= ts].iloc[-600:]  # includes the still-open candles
            rings[tf].extend(frame_to_candles(rows, symbol="ETHUSDT", timeframe=tf))
        live = build_base_data_input(ts=ts, symbol="ETHUSDT", reference_symbol="BTCUSDT",
                                     rings=rings, reference_ring=None, frame_ring=None)
        feats = normalize_input(live, tuple(COMPONENTS))
        sample = data.batch(np.array([i]))
        for name in COMPONENTS:
            np.testing.assert_array_equal(sample[name][0].numpy(), feats[name], err_msg=name)


def test_full_default_dataset_builds_in_seconds(eth_history: dict) -> None:
    data = make_dataset(eth_history, start_ms=0, end_ms=DEFAULT_TRAIN_END_MS)
    assert len(data) == 18_940
    assert data.times[0] == 1_722_021_300_000  # 2024-07-26 19:15: first full 300 x 1m window
    assert data.times[-1] + 6 * M == DEFAULT_TRAIN_END_MS
    assert np.bincount(data.labels).tolist() == [2601, 2871, 13468]  # BUY, SELL, HOLD
    assert data.windows["primary_1d"].shape == (14, 300, 5)  # distinct daily windows, shared
