"""BaseDataInput assembly on the recorded ETHUSDT / BTCUSDT data: alignment, no future data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.data.history import frame_to_candles
from ml.features.base_input import (
    COMPONENT_SHAPES,
    BaseDataInput,
    IncompleteInputError,
    InputShapeError,
    build_base_data_input,
    last_closed_open_time,
)
from ml.features.rings import TIMEFRAME_MS, CandleRing

S, M, H, D = 1000, 60_000, 3_600_000, 86_400_000
TS_2359_59 = 1_723_161_599_000  # 2024-08-08 23:59:59 UTC, the last second before midnight
FIRST_1S = 1_723_161_256_000  # first 1s candle of the recording, 23:54:16
OHLCV = ["open", "high", "low", "close", "volume"]


def ring_from(df: pd.DataFrame, timeframe: str, until_ms: int) -> CandleRing:
    """A 600-row ring holding the candles up to ``until_ms`` (open time), future ones included."""
    ring = CandleRing(timeframe, capacity=600)
    rows = df[df["open_time"] <= until_ms].iloc[-600:]
    ring.extend(frame_to_candles(rows, symbol="X", timeframe=timeframe))
    return ring


def build(eth_history: dict, derived_1s: dict, ts: int, future_ms: int) -> BaseDataInput:
    """Rings loaded with ``future_ms`` of data past ts (candles that close after ts)."""
    rings = {tf: ring_from(eth_history[tf], tf, ts + future_ms // M * TIMEFRAME_MS[tf])
             for tf in ("1m", "1h", "1d")}
    rings["1s"] = ring_from(derived_1s["ETHUSDT"], "1s", ts + 5 * S)
    return build_base_data_input(
        ts=ts, symbol="ETHUSDT", reference_symbol="BTCUSDT", rings=rings,
        reference_ring=ring_from(derived_1s["BTCUSDT"], "1s", ts + 5 * S), frame_ring=None,
        last_outputs={})


def expected_window(df: pd.DataFrame, last_open: int) -> np.ndarray:
    return df[df["open_time"] <= last_open][OHLCV].iloc[-300:].to_numpy(np.float32)


def test_last_closed_candle_is_the_one_closed_by_the_end_of_second_ts() -> None:
    assert last_closed_open_time(TS_2359_59, "1s") == TS_2359_59
    assert last_closed_open_time(TS_2359_59, "1m") == TS_2359_59 + S - M  # 23:59 closes at 00:00
    assert last_closed_open_time(TS_2359_59, "1h") == TS_2359_59 + S - H
    assert last_closed_open_time(TS_2359_59, "1d") == TS_2359_59 + S - D
    ts = TS_2359_59 - 29 * S  # 23:59:30: the 23:59 minute is still open
    assert last_closed_open_time(ts, "1m") == TS_2359_59 + S - 2 * M
    assert last_closed_open_time(ts, "1h") == TS_2359_59 + S - 2 * H
    assert last_closed_open_time(ts, "1d") == TS_2359_59 + S - 2 * D


@pytest.mark.parametrize("ts", [TS_2359_59, TS_2359_59 - 29 * S])
def test_windows_equal_the_history_up_to_ts_and_never_later(eth_history: dict, derived_1s: dict,
                                                            ts: int) -> None:
    inputs = build(eth_history, derived_1s, ts, future_ms=3 * M)  # 3 periods of future candles
    for name, tf in (("primary_1m", "1m"), ("primary_1h", "1h"), ("primary_1d", "1d")):
        want = expected_window(eth_history[tf], last_closed_open_time(ts, tf))
        np.testing.assert_array_equal(inputs.components[name], want, err_msg=name)
        assert inputs.present[name].all()
    np.testing.assert_array_equal(inputs.components["primary_1s"][-1],
                                  expected_window(derived_1s["ETHUSDT"], ts)[-1])
    if ts == TS_2359_59:  # README cross-check: ETH 23:59 and the 23:00 hour both close at 2682.50
        assert inputs.components["primary_1m"][-1, 3] == pytest.approx(2682.50)
        assert inputs.components["primary_1h"][-1, 3] == pytest.approx(2682.50)


def test_a_candle_still_open_at_ts_is_not_in_the_window(derived_1s: dict) -> None:
    ts = TS_2359_59 - 29 * S
    ring = CandleRing("1m", capacity=600)
    df = derived_1s["ETHUSDT"]  # any prices; the open 23:59 candle gets a marker price
    ring.extend(frame_to_candles(df.iloc[:1].assign(open_time=TS_2359_59 + S - 2 * M), symbol="X",
                                 timeframe="1m"))
    ring.extend(frame_to_candles(df.iloc[:1].assign(open_time=TS_2359_59 + S - M, close=9e5),
                                 symbol="X", timeframe="1m"))
    inputs = build_base_data_input(ts=ts, symbol="ETHUSDT", reference_symbol="BTCUSDT",
                                   rings={"1m": ring}, reference_ring=None, frame_ring=None)
    assert inputs.present["primary_1m"][-1]
    assert (inputs.components["primary_1m"] < 9e5).all()


def test_completeness_is_the_share_of_rows_present(eth_history: dict, derived_1s: dict) -> None:
    ts = FIRST_1S + 149 * S  # 1s windows start 150 s before the recording: 150 of 300 present
    inputs = build(eth_history, derived_1s, ts, future_ms=0)
    scores = inputs.completeness()
    assert scores["primary_1s"] == pytest.approx(0.5)
    assert scores["reference_1s"] == pytest.approx(0.5)
    assert scores["primary_1m"] == scores["primary_1h"] == scores["primary_1d"] == 1.0
    assert scores["cob"] == 0.0  # no frame ring
    assert scores["overall"] == pytest.approx((0.5 + 1 + 1 + 1 + 0.5 + 0) / 6)
    # rows before the recording are zeros, not invented prices
    np.testing.assert_array_equal(inputs.components["primary_1s"][:150], 0.0)
    inputs.require_complete(("primary_1m", "primary_1h"), 0.9)
    with pytest.raises(IncompleteInputError, match="primary_1s"):
        inputs.require_complete(("primary_1m", "primary_1s"), 0.9)


def test_validate_names_the_component_and_both_shapes() -> None:
    components = {n: np.zeros(s, np.float32) for n, s in COMPONENT_SHAPES.items()}
    present = {n: np.ones(300, bool) for n in COMPONENT_SHAPES}
    inputs = BaseDataInput("ETHUSDT", "BTCUSDT", TS_2359_59, components, present)
    inputs.validate()
    components["primary_1h"] = np.zeros((299, 5), np.float32)
    message = r"'primary_1h': expected shape \(300, 5\), got \(299, 5\)"
    with pytest.raises(InputShapeError, match=message):
        inputs.validate()
    components["primary_1h"] = np.zeros((300, 5), np.float64)
    with pytest.raises(InputShapeError, match="primary_1h.*float32"):
        inputs.validate()
    del components["primary_1h"]
    with pytest.raises(InputShapeError, match="'primary_1h' is missing"):
        inputs.validate()


def test_it_rejects_a_partial_second_and_a_misplaced_ring() -> None:
    with pytest.raises(ValueError, match="start of a second"):
        build_base_data_input(ts=TS_2359_59 + 1, symbol="E", reference_symbol="B", rings={},
                              reference_ring=None, frame_ring=None)
    with pytest.raises(ValueError, match="primary_1m"):
        build_base_data_input(ts=TS_2359_59, symbol="E", reference_symbol="B",
                              rings={"1m": CandleRing("1h")}, reference_ring=None, frame_ring=None)
