"""Ring buffers: grid alignment, gap filling, replacement, eviction, CobFrame layout."""
from __future__ import annotations

import numpy as np
import pytest

from ml.features.rings import CandleRing, FrameRing, cob_width
from ml.market.events import Candle, CobFrame

T0 = 1_723_161_600_000  # 2024-08-09 00:00 UTC
M = 60_000


def candle(minute: int, close: float, volume: float = 1.0, tf: str = "1m") -> Candle:
    return Candle(symbol="ETHUSDT", timeframe=tf, open_time=T0 + minute * M, open=close - 1,
                  high=close + 2, low=close - 2, close=close, volume=volume)


def frame(second: int, level: float, n: int = 20) -> CobFrame:
    m = 2 * n + 1
    return CobFrame(symbol="ETHUSDT", ts=T0 + second * 1000, mid=2682.5, best_bid=2682.49,
                    best_ask=2682.51, bucket_width=1.0, n_buckets=n, first_bucket_price=2662.0,
                    bid_usd=np.full(m, level), ask_usd=np.arange(m, dtype=float),
                    imbalance=np.zeros(m), imbalance_5=0.25,
                    imbalance_ma={"1s": 0.1, "5s": 0.2, "15s": 0.3, "60s": -0.4})


def test_window_is_aligned_to_the_grid_and_oldest_first() -> None:
    ring = CandleRing("1m", capacity=20)
    ring.extend(candle(i, 100.0 + i, volume=i) for i in range(10))
    values, present = ring.window(T0 + 9 * M, n=4)
    assert values.dtype == np.float32 and values.shape == (4, 5)
    np.testing.assert_allclose(values[:, 3], [106, 107, 108, 109])
    np.testing.assert_allclose(values[0], [105, 108, 104, 106, 6])
    assert present.tolist() == [True] * 4


def test_missing_rows_are_flat_at_the_previous_close_with_zero_volume() -> None:
    ring = CandleRing("1m", capacity=20)
    ring.extend([candle(0, 100.0), candle(1, 101.0), candle(4, 104.0)])
    values, present = ring.window(T0 + 5 * M, n=6)
    assert present.tolist() == [True, True, False, False, True, False]
    np.testing.assert_allclose(values[2], [101, 101, 101, 101, 0])
    np.testing.assert_allclose(values[3], [101, 101, 101, 101, 0])
    np.testing.assert_allclose(values[5], [104, 104, 104, 104, 0])


def test_fill_looks_back_before_the_window_else_uses_zeros() -> None:
    ring = CandleRing("1m", capacity=20)
    ring.extend([candle(0, 100.0), candle(5, 105.0)])
    values, present = ring.window(T0 + 5 * M, n=3)  # minutes 3, 4 missing; minute 0 is earlier
    assert present.tolist() == [False, False, True]
    np.testing.assert_allclose(values[0], [100, 100, 100, 100, 0])
    empty = CandleRing("1m", capacity=20)
    empty.upsert(candle(5, 105.0))
    values, present = empty.window(T0 + 6 * M, n=3)
    np.testing.assert_array_equal(values[0], np.zeros(5))
    np.testing.assert_allclose(values[2], [105, 105, 105, 105, 0])
    assert present.tolist() == [False, True, False]


def test_upsert_replaces_the_candle_with_the_same_open_time() -> None:
    ring = CandleRing("1m", capacity=5)
    ring.upsert(candle(0, 100.0, volume=1.0))  # still-open candle
    ring.upsert(candle(0, 99.0, volume=3.0))  # its final version
    values, _ = ring.window(T0, n=1)
    np.testing.assert_allclose(values[0], [98, 101, 97, 99, 3])
    assert len(ring) == 1


def test_newer_rows_evict_rows_capacity_periods_older() -> None:
    ring = CandleRing("1m", capacity=10)
    ring.extend(candle(i, 100.0 + i) for i in range(15))
    assert len(ring) == 10 and ring.last_time == T0 + 14 * M
    _, present = ring.window(T0 + 14 * M, n=10)
    assert present.all()
    ring.upsert(candle(2, 1.0))  # older than the row now in its slot: ignored
    values, _ = ring.window(T0 + 12 * M, n=1)
    assert values[0, 3] == pytest.approx(112.0)


def test_it_rejects_bad_requests() -> None:
    ring = CandleRing("1m", capacity=10)
    with pytest.raises(ValueError, match="aligned"):
        ring.window(T0 + 1, n=3)
    with pytest.raises(ValueError, match="capacity"):
        ring.window(T0, n=11)
    with pytest.raises(ValueError, match="timeframe"):
        ring.upsert(candle(0, 1.0, tf="1h"))
    with pytest.raises(ValueError, match="unknown timeframe"):
        CandleRing("5m")


def test_frame_ring_layout_and_fill() -> None:
    ring = FrameRing(capacity=10)
    ring.extend([frame(0, 5.0), frame(2, 7.0)])
    values, present = ring.window(T0 + 3000, n=4)
    assert values.shape == (4, cob_width(20)) == (4, 87)
    assert present.tolist() == [True, False, True, False]
    np.testing.assert_allclose(values[0, :41], 5.0)  # bid_usd
    np.testing.assert_allclose(values[0, 41:82], np.arange(41))  # ask_usd
    np.testing.assert_allclose(values[0, 82:], [0.25, 0.1, 0.2, 0.3, -0.4])
    np.testing.assert_array_equal(values[1], values[0])  # gap copies the previous frame
    np.testing.assert_allclose(values[3, :41], 7.0)


def test_frame_ring_rejects_wrong_bucket_count_and_missing_ma() -> None:
    ring = FrameRing(capacity=10)
    with pytest.raises(ValueError, match=r"\(41,\)"):
        ring.upsert(frame(0, 1.0, n=10))
    bad = frame(0, 1.0)
    bad.imbalance_ma.pop("60s")
    with pytest.raises(ValueError, match="60s"):
        ring.upsert(bad)
