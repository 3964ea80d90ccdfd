"""The candle window memo: a repeated read is served once per ring version, as copies."""
from __future__ import annotations

import numpy as np

from ml.features.rings import CandleRing
from ml.market.events import Candle

T0 = 1_723_161_600_000  # 2024-08-09 00:00 UTC
M = 60_000


def candle(minute: int, close: float) -> Candle:
    return Candle(symbol="ETHUSDT", timeframe="1m", open_time=T0 + minute * M, open=close - 1,
                  high=close + 2, low=close - 2, close=close, volume=1.0)


def test_a_rewritten_candle_shows_in_the_next_window_and_callers_cannot_spoil_the_memo() -> None:
    ring = CandleRing("1m", capacity=20)
    ring.extend(candle(i, 100.0 + i) for i in (0, 1, 3))  # minute 2 missing: filled flat
    rows, present = ring.window(T0 + 3 * M, 4)
    assert present.tolist() == [True, True, False, True] and rows[2].tolist() == [101, 101, 101, 101, 0]
    rows[:] = -1.0  # the caller's copy only
    present[:] = False
    again, present_again = ring.window(T0 + 3 * M, 4)
    assert again[3, 3] == 103.0 and present_again.tolist() == [True, True, False, True]
    ring.upsert(candle(3, 150.0))  # the same minute, new values: a new ring version
    updated, _ = ring.window(T0 + 3 * M, 4)
    assert updated[3, 3] == 150.0 and np.array_equal(updated[:3], again[:3])
    ring.upsert(candle(2, 120.0))  # the gap filled late
    filled, present_filled = ring.window(T0 + 3 * M, 4)
    assert present_filled.all() and filled[2, 3] == 120.0
