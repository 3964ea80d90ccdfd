"""Standard floor pivots (ml.features.pivots)."""
from __future__ import annotations

import math

import pytest

from ml.features.pivots import FloorPivots, floor_pivot_series, floor_pivots


def test_it_computes_the_standard_levels_from_high_low_close():
    # H 2700, L 2600, C 2680: P = 7980 / 3 = 2660; R1 = 5320 - 2600; S1 = 5320 - 2700; R2/S2 = P ± 100.
    pivots = floor_pivots(2700.0, 2600.0, 2680.0)

    assert pivots == FloorPivots(p=pytest.approx(2660.0), r1=pytest.approx(2720.0), r2=pytest.approx(2760.0),
                                 s1=pytest.approx(2620.0), s2=pytest.approx(2560.0))


def test_levels_are_ordered_from_s2_to_r2():
    pivots = floor_pivots(101.5, 99.25, 99.5)

    assert pivots.s2 <= pivots.s1 <= pivots.p <= pivots.r1 <= pivots.r2


def test_a_flat_period_puts_every_level_on_its_price():
    pivots = floor_pivots(50.0, 50.0, 50.0)

    assert pivots.as_dict() == {"p": 50.0, "r1": 50.0, "r2": 50.0, "s1": 50.0, "s2": 50.0}


@pytest.mark.parametrize(("high", "low", "close", "field"), [
    (99.0, 100.0, 99.5, "high"),
    (101.0, 100.0, 102.0, "close"),
    (math.nan, 100.0, 100.0, "high"),
    (101.0, 100.0, math.inf, "close"),
])
def test_it_rejects_an_impossible_candle_naming_the_field(high, low, close, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        floor_pivots(high, low, close)


def test_each_candle_gets_the_pivots_of_the_one_before_it():
    candles = [(10.0, 8.0, 9.0), (12.0, 9.0, 11.0), (11.0, 10.0, 10.5)]

    series = floor_pivot_series(candles)

    assert series[0] is None
    assert series[1]["p"] == pytest.approx(9.0)  # (10 + 8 + 9) / 3
    assert series[1]["r1"] == pytest.approx(10.0)
    assert series[2]["p"] == pytest.approx(32.0 / 3.0)
    assert series[2]["s2"] == pytest.approx(32.0 / 3.0 - 3.0)


def test_an_invalid_candle_leaves_a_hole_not_an_error():
    series = floor_pivot_series([(10.0, 8.0, 9.0), (7.0, 9.0, 8.0), (12.0, 9.0, 11.0)])

    assert series[1] is not None
    assert series[2] is None  # its predecessor has high < low
