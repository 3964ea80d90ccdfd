"""Williams market-structure pivots, hand-checked on recorded Binance BTCUSDT 1m candles."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ml.market.recording import default_data_dir
from ml.pivots import williams_pivots

MIDNIGHT = 1723161600000  # 2024-08-09 00:00 UTC, the end of the recorded order-book window's first part


@pytest.fixture(scope="module")
def btc_1m() -> pd.DataFrame:
    return pd.read_csv(default_data_dir() / "ohlcv/binance_spot_BTCUSDT_1m_20240726-20240825.csv.gz")


def _window(df: pd.DataFrame, minutes: int) -> pd.DataFrame:
    return df[(df.open_time >= MIDNIGHT - minutes * 60_000) & (df.open_time < MIDNIGHT)].reset_index(drop=True)


def test_level_one_swings_of_the_last_20_minutes_before_midnight(btc_1m):
    # 23:40 .. 23:59; highs 61954.55 61931.06 61982.39 62086.00 61992.02 61958.01 61883.35 61850.00
    # 61865.63 61789.99 ... 61860.80 61782.26 61735.99 61745.27 61743.50: read off the file by hand.
    w = _window(btc_1m, 20)
    p = williams_pivots(w.high.to_numpy(), w.low.to_numpy())

    one = p.level(1)
    assert one.high_index.tolist() == [3, 8, 15, 18]  # 23:43 62086.00, 23:48, 23:55, 23:58
    assert one.high_price.tolist() == [62086.0, 61865.63, 61860.8, 61745.27]
    assert one.low_index.tolist() == [2, 6, 10, 12, 18]  # 23:42 61890.00 ... 23:58 61583.22
    assert one.low_price.tolist() == [61890.0, 61792.5, 61712.0, 61706.0, 61583.22]
    # a falling market: no swing high beats both neighbouring swing highs, and no low either
    assert len(p.level(2).high_index) == len(p.level(2).low_index) == 0
    assert (one.support, one.resistance) == (61583.22, 61745.27)
    assert math.isnan(p.level(2).support)


def test_higher_levels_of_the_two_hours_before_midnight(btc_1m):
    w = _window(btc_1m, 120)  # 22:00 .. 23:59
    p = williams_pivots(w.high.to_numpy(), w.low.to_numpy(), levels=5)

    two, three = p.level(2), p.level(3)
    # 23:00 (index 60) 62745.14 beats its level-1 neighbours 62530.00 (22:57) and 62662.16 (23:02)
    assert two.high_index.tolist() == [11, 34, 60, 70, 103]
    assert two.high_price.tolist() == [61000.0, 61318.6, 62745.14, 62550.0, 62086.0]
    # 22:34 and 22:40 share the high 61318.60: the flat top is one pivot, at its first candle
    assert 40 not in two.high_index
    assert two.low_index.tolist() == [16, 28, 44, 65, 90]
    assert three.high_index.tolist() == [60] and len(three.low_index) == 0
    assert len(p.level(4).high_index) == len(p.level(5).high_index) == 0
    sr = p.support_resistance()
    assert sr.shape == (5, 2)
    assert sr[1].tolist() == [61702.02, 62086.0]  # level 2: support 23:30, resistance 23:43
    assert sr[2, 1] == 62745.14 and math.isnan(sr[2, 0])


def _plain(values: list[float], highs: bool) -> list[int]:
    """Level-1 pivots by a loop over the whole series, strength 1."""
    out = []
    for i in range(1, len(values) - 1):
        a, b, c = values[i - 1], values[i], values[i + 1]
        if (highs and b > a and b >= c) or (not highs and b < a and b <= c):
            out.append(i)
    return out


def test_every_level_equals_a_plain_loop_over_the_previous_level():
    df = pd.read_csv(default_data_dir() / "ohlcv/binance_spot_BTCUSDT_1h_20200511-20240508.csv.gz").tail(1500)
    high, low = df.high.to_numpy(), df.low.to_numpy()
    p = williams_pivots(high, low)

    hi_idx, lo_idx = list(range(len(high))), list(range(len(low)))
    for level in p.levels:
        hi_idx = [hi_idx[j] for j in _plain([high[i] for i in hi_idx], True)]
        lo_idx = [lo_idx[j] for j in _plain([low[i] for i in lo_idx], False)]
        assert level.high_index.tolist() == hi_idx
        assert level.low_index.tolist() == lo_idx
    assert len(p.level(4).high_index) > 0  # 1,500 hours have long-term swings


def test_a_wider_strength_needs_more_candles_on_each_side():
    high = np.array([1.0, 2.0, 3.0, 2.5, 2.8, 2.0, 1.0])
    low = high - 0.5
    assert williams_pivots(high, low, levels=1).level(1).high_index.tolist() == [2, 4]
    assert williams_pivots(high, low, levels=1, strength=2).level(1).high_index.tolist() == [2]


def test_bad_candles_are_refused():
    with pytest.raises(ValueError, match="same length"):
        williams_pivots(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="finite"):
        williams_pivots(np.array([1.0, np.nan]), np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="high below low"):
        williams_pivots(np.array([1.0, 1.0]), np.array([0.5, 2.0]))
    with pytest.raises(ValueError, match="levels must be"):
        williams_pivots(np.ones(3), np.ones(3), levels=0)
