"""Indicators against pandas references and hand values, and the look-ahead rule: changing any
data after time t changes no feature at t (indicators, pivots, the whole BaseDataInput)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.features.base_input import BaseDataInput, InputShapeError, build_base_data_input
from ml.features.indicators import INDICATOR_NAMES, ema, indicators, rolling_sum
from ml.models.output import ModelOutput

COL = {name: i for i, name in enumerate(INDICATOR_NAMES)}


@pytest.fixture
def candles() -> np.ndarray:
    rng = np.random.default_rng(0)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, 300)))
    o = np.r_[c[0], c[:-1]]
    h, low = np.maximum(o, c) * 1.001, np.minimum(o, c) * 0.999
    return np.stack([o, h, low, c, rng.uniform(1, 5, 300)], axis=1)


def test_ema_and_rolling_sum_match_pandas() -> None:
    x = np.random.default_rng(1).normal(size=300)
    np.testing.assert_allclose(ema(x, 0.1), pd.Series(x).ewm(alpha=0.1, adjust=False).mean(), atol=1e-12)
    np.testing.assert_allclose(rolling_sum(x, 20), pd.Series(x).rolling(20, min_periods=1).sum(), atol=1e-12)


def test_rsi_macd_bollinger_and_atr_match_pandas_references(candles) -> None:
    out = indicators(candles).astype(np.float64)
    o, h, low, c, v = (pd.Series(candles[:, k]) for k in range(5))
    d = c.diff().fillna(0.0)
    gain = d.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-d).clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    np.testing.assert_allclose(out[1:, COL["rsi"]], (gain / (gain + loss))[1:], atol=1e-6)
    macd = (c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()) / c
    np.testing.assert_allclose(out[:, COL["macd"]], macd, atol=1e-7)
    np.testing.assert_allclose(out[:, COL["macd_signal"]], macd.ewm(span=9, adjust=False).mean(), atol=1e-7)
    mid, sd = c.rolling(20, min_periods=1).mean(), c.rolling(20, min_periods=1).std(ddof=0)
    np.testing.assert_allclose(out[20:, COL["bb_pctb"]], ((c - mid + 2 * sd) / (4 * sd))[20:], atol=1e-5)
    prev = c.shift(1).fillna(c.iloc[0])
    tr = pd.concat([h - low, (h - prev).abs(), (low - prev).abs()], axis=1).max(axis=1)
    np.testing.assert_allclose(out[:, COL["atr"]], tr.ewm(alpha=1 / 14, adjust=False).mean() / c, rtol=1e-5)


def test_vwap_and_obv_on_a_hand_example() -> None:
    # closes 10, 11, 10.5 with volumes 1, 2, 3; typical price = close (flat candles)
    x = np.array([[10, 10, 10, 10, 1], [11, 11, 11, 11, 2], [10.5, 10.5, 10.5, 10.5, 3]], dtype=np.float64)
    out = indicators(x)
    vwap = (10 * 1 + 11 * 2 + 10.5 * 3) / 6
    assert out[2, COL["vwap"]] == pytest.approx(np.log(10.5 / vwap), abs=1e-6)
    assert out[2, COL["obv"]] == pytest.approx((0 + 2 - 3) / 6, abs=1e-6)  # up 2, down 3


def test_zero_rows_before_any_data_give_zero_features(candles) -> None:
    candles[:50] = 0.0
    out = indicators(candles)
    assert (out[:50] == 0).all() and np.isfinite(out).all()


@pytest.mark.parametrize("t", [0, 25, 150, 298])
def test_changing_data_after_t_changes_no_indicator_at_t(candles, t) -> None:
    changed = candles.copy()
    changed[t + 1:] *= np.random.default_rng(t).uniform(0.5, 2.0, changed[t + 1:].shape)
    np.testing.assert_allclose(indicators(changed)[: t + 1], indicators(candles)[: t + 1], rtol=0, atol=1e-7)


def _rings(history: dict, derived_1s: dict, *, until: int, future_scale: float, ts: int):
    """Rings holding the data up to ``until`` (ms); every candle not closed by the end of second ``ts``
    (``open_time + period > ts + 1 s``: later ones and the 1m/1h/1d candles still open) scaled."""
    from ml.data.history import frame_to_candles
    from ml.features.rings import TIMEFRAME_MS, CandleRing

    def ring(df: pd.DataFrame, tf: str, symbol: str) -> CandleRing:
        df = df[df["open_time"] <= until].iloc[-600:].copy()
        late = df["open_time"] + TIMEFRAME_MS[tf] > ts + 1000
        df.loc[late, ["open", "high", "low", "close", "volume"]] *= future_scale
        r = CandleRing(tf, capacity=600)
        r.extend(frame_to_candles(df, symbol=symbol, timeframe=tf))
        return r

    rings = {tf: ring(df, tf, "ETHUSDT") for tf, df in history.items()}
    rings["1s"] = ring(derived_1s["ETHUSDT"], "1s", "ETHUSDT")
    return rings, ring(derived_1s["BTCUSDT"], "1s", "BTCUSDT")


def test_changing_any_data_after_t_changes_no_base_data_input_feature_at_t(eth_history, derived_1s) -> None:
    ts = int(derived_1s["ETHUSDT"]["open_time"].iloc[400])  # 400 s into the recorded session
    built = []
    for scale in (1.0, 1.7):  # the future rows (1s, and the 1m/1h/1d candles still open at ts) change
        rings, reference = _rings(eth_history, derived_1s, until=ts + 7_200_000, future_scale=scale, ts=ts)
        built.append(build_base_data_input(ts=ts, symbol="ETHUSDT", reference_symbol="BTCUSDT", rings=rings,
                                           reference_ring=reference, frame_ring=None))
    a, b = built
    assert a.completeness()["primary_1s"] == 1.0 and a.completeness()["primary_1m"] == 1.0
    for name in a.components:
        np.testing.assert_array_equal(a.components[name], b.components[name], err_msg=name)
        np.testing.assert_array_equal(a.present[name], b.present[name])
    for name in a.indicators:
        np.testing.assert_array_equal(a.indicators[name], b.indicators[name], err_msg=name)
        np.testing.assert_array_equal(a.pivots[name], b.pivots[name], err_msg=name)
    assert a.pivots["primary_1m"].shape == (5, 2) and np.isfinite(a.pivots["primary_1m"][0]).all()
    # the rings did hold future data: a build at a later second sees it
    rings, reference = _rings(eth_history, derived_1s, until=ts + 7_200_000, future_scale=1.7, ts=ts)
    later = build_base_data_input(ts=ts + 1000, symbol="ETHUSDT", reference_symbol="BTCUSDT", rings=rings,
                                  reference_ring=reference, frame_ring=None)
    assert later.components["primary_1s"][-1, 3] == pytest.approx(1.7 * a.components["primary_1s"][-1, 3], rel=0.01)


def test_last_output_features_and_derived_shape_validation(eth_history) -> None:
    out = ModelOutput.from_probs(model_name="cnn", model_version="v", probs=np.array([0.2, 0.3, 0.5]))
    inputs = BaseDataInput("ETHUSDT", "BTCUSDT", 0, {}, {}, last_outputs={"cnn": out})
    np.testing.assert_allclose(inputs.last_output_features(("cnn", "dqn")),
                               [[1, 0.2, 0.3, 0.5, 0.5], [0, 0, 0, 0, 0]], atol=1e-7)
    inputs.indicators = {"primary_1m": np.zeros((300, 8), dtype=np.float32)}
    with pytest.raises(InputShapeError):
        inputs.validate()


def test_derived_features_are_cached_by_window_values_and_bad_pivots_become_nan(candles, caplog) -> None:
    from ml.features import base_input

    comps = {n: candles.astype(np.float32) * (1 + k) for k, n in enumerate(base_input.PRIMARY_TIMEFRAMES)}
    base_input._DERIVED_CACHE.clear()
    ind, piv = base_input.derived_features(comps)
    ind2, piv2 = base_input.derived_features(comps)
    assert ind2["primary_1m"] is ind["primary_1m"]  # served from the cache
    np.testing.assert_array_equal(ind["primary_1h"], indicators(comps["primary_1h"]))
    bad = dict(comps, primary_1d=comps["primary_1d"].copy())
    bad["primary_1d"][10, 1] = bad["primary_1d"][10, 2] - 1  # high below low
    _, piv3 = base_input.derived_features(bad)
    assert np.isnan(piv3["primary_1d"]).all() and "pivots of primary_1d not computed" in caplog.text
