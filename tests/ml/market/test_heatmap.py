"""COB heatmap: shape, price alignment by bucket key, missing seconds, metrics and the cache."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ml.market.heatmap import HeatmapCache, heatmap_matrix
from tests.ml.market.recorded import HAND_CHECKED_SECOND


def test_the_default_heatmap_is_300_seconds_by_21_price_buckets_ending_at_the_newest_frame(spot_run):
    frames = spot_run.frames["BTCUSDT"]
    hm = heatmap_matrix(frames)

    assert hm.imbalance.shape == hm.volume.shape == (300, 21)
    assert hm.spread.shape == hm.mid.shape == hm.ts.shape == (300,)
    assert hm.ts[-1] == frames[-1].ts and np.all(np.diff(hm.ts) == 1000)
    center = math.floor(frames[-1].mid / 10.0) * 10.0
    assert hm.price[10] == center and np.all(np.diff(hm.price) == 10.0)


def test_each_cell_is_the_frames_value_for_the_same_price_bucket(spot_run):
    frames = [f for f in spot_run.frames["ETHUSDT"] if f.ts <= HAND_CHECKED_SECOND]
    hm = heatmap_matrix(frames, window_s=120, n_buckets=10)

    checked = 0
    for row, ts in enumerate(hm.ts):
        frame = next(f for f in frames if f.ts == ts)
        assert hm.spread[row] == pytest.approx(frame.best_ask - frame.best_bid)
        for col, price in enumerate(hm.price):
            i = round((price - frame.first_bucket_price) / frame.bucket_width)
            if 0 <= i <= 40:
                assert hm.imbalance[row, col] == frame.imbalance[i]
                assert hm.volume[row, col] == frame.bid_usd[i] + frame.ask_usd[i]
                checked += 1
            else:
                assert math.isnan(hm.imbalance[row, col])
    assert checked == 120 * 21  # the ETH mid stays within +-10 USD over two minutes
    hand = list(hm.ts).index(HAND_CHECKED_SECOND)
    assert hm.volume[hand, 10] == pytest.approx(408645.130184 + 4436.098672, abs=1e-6)  # [2683, 2684)


def test_seconds_without_a_frame_are_nan_rows(spot_run):
    frames = spot_run.frames["ETHUSDT"]
    hm = heatmap_matrix(frames[:10], window_s=30)

    assert np.isnan(hm.imbalance[:20]).all() and np.isnan(hm.spread[:20]).all()
    assert not np.isnan(hm.imbalance[20:]).all()


def test_the_cache_rebuilds_only_after_a_new_frame(spot_run):
    cache = HeatmapCache()
    for f in spot_run.frames["ETHUSDT"][:50]:
        cache.push(f)
    first = cache.get()
    assert cache.get() is first and cache.builds == 1
    cache.push(spot_run.frames["ETHUSDT"][50])
    assert cache.get() is not first and cache.builds == 2


def test_bad_heatmap_arguments_are_refused(spot_run):
    with pytest.raises(ValueError, match="no frames"):
        heatmap_matrix([])
    with pytest.raises(ValueError, match="share symbol"):
        heatmap_matrix([spot_run.frames["ETHUSDT"][0], spot_run.frames["BTCUSDT"][0]])
