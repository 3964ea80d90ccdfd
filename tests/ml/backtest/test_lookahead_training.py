"""The training-window check (ml.backtest.lookahead_training) on real 2025 ETHUSDT 1m candles:
make_dataset passes; a feature that reads the label's future close is caught."""
import numpy as np
import pytest

from ml.backtest.lookahead import TRAINING_WINDOW
from ml.backtest.lookahead_training import (
    TrainingSamples,
    candle_dataset_builder,
    history_as_of,
    sample_set_builder,
    training_window_check,
)
from ml.data.history import load_ohlcv_csv
from ml.market.recording import default_data_dir

ROWS = 2000  # 2025-05-20 00:00 -> 09:19 UTC


@pytest.fixture(scope="module")
def history():
    frame = load_ohlcv_csv(default_data_dir() / "ohlcv" / "binance_spot_ETHUSDT_1m_20250520-20250719.csv.gz")
    return {"1m": frame.iloc[:ROWS].reset_index(drop=True)}


@pytest.fixture(scope="module")
def build(history):
    first = int(history["1m"]["open_time"].iloc[0])
    return candle_dataset_builder(start_ms=first, end_ms=first + ROWS * 60_000, components=("primary_1m",))


def test_the_history_as_known_at_a_cut_keeps_closed_bars_alters_the_next_day_and_drops_the_rest(history):
    frame = history["1m"]
    cut = int(frame["open_time"].iloc[999]) + 60_000  # the close of bar 999
    known = history_as_of(history, cut, keep_after_ms=60 * 60_000, seed=1)["1m"]
    assert len(known) == 1000 + 60
    assert known.iloc[:1000].equals(frame.iloc[:1000])
    after, original = known.iloc[1000:], frame.iloc[1000:1060]
    ratio = after["close"].to_numpy() / original["close"].to_numpy()
    assert np.all((np.abs(ratio - 1) >= 0.005 - 1e-12) & (np.abs(ratio - 1) <= 0.015 + 1e-12))
    assert len(np.unique(ratio.round(9))) == 60  # each bar its own factor
    assert (after["high"] >= after["low"]).all()
    with pytest.raises(ValueError, match="history timeframe '2m'"):
        history_as_of({"2m": frame}, cut)


def test_the_candle_dataset_reads_nothing_after_a_cut(history, build):
    result = training_window_check(build, history, samples=3, seed=2)
    assert result["leaks"] == []
    assert result["samples"] == ROWS - 299 - 5  # a full 300-bar window before, a 5-minute label after, no gap
    assert len(result["cuts"]) == 3 and all(c["compared"] > c["labelled"] > 0 for c in result["cuts"])
    first, last = result["span_ms"]
    assert [c["cut_ms"] for c in result["cuts"]] == sorted(c["cut_ms"] for c in result["cuts"])
    assert first <= result["cuts"][0]["cut_ms"] and result["cuts"][-1]["cut_ms"] <= last


def test_a_feature_that_reads_the_labels_future_close_is_caught(history, build):
    def leaky(hist):
        samples = build(hist)
        return TrainingSamples(samples.times, samples.label_times,
                               {**samples.features, "future_return": samples.labels["return"][:, None]},
                               samples.labels)

    result = training_window_check(leaky, history, samples=3, seed=2)
    assert len(result["leaks"]) == 3 and {leak.kind for leak in result["leaks"]} == {TRAINING_WINDOW}
    for leak, cut in zip(result["leaks"], result["cuts"], strict=True):
        assert leak.component == "future_return" and leak.cut_ms == cut["cut_ms"]
        assert "5 of" in leak.detail  # the 5 samples whose 5-minute horizon straddles the cut
        assert cut["cut_ms"] - 5 * 60_000 <= leak.ts < cut["cut_ms"]
        assert 0.004 < leak.max_abs_diff < 0.05  # the altered closes are 0.5-1.5% off
    # Removing the later history alone cannot see it: the straddling samples lose their label and vanish.
    hidden = training_window_check(leaky, history, cuts=[c["cut_ms"] for c in result["cuts"]], keep_after_ms=0)
    assert hidden["leaks"] == []


def test_a_label_that_reads_past_its_horizon_is_caught(history, build):
    def late_label(hist):
        samples = build(hist)
        closes = hist["1m"].set_index("open_time")["close"]
        later = closes.reindex(samples.times + 10 * 60_000).to_numpy()  # 10 minutes on, the horizon says 5
        labels = {**samples.labels, "return": np.nan_to_num(later / closes.reindex(samples.times - 60_000).to_numpy() - 1)}
        return TrainingSamples(samples.times, samples.label_times, samples.features, labels)

    result = training_window_check(late_label, history, samples=2, seed=2)
    assert {leak.component for leak in result["leaks"]} == {"label:return"}
    assert all(leak.old != leak.new for leak in result["leaks"])


def test_the_market_families_candle_samples_read_nothing_after_a_cut(history):
    eth = history["1m"].iloc[:600].reset_index(drop=True)
    btc = load_ohlcv_csv(default_data_dir() / "ohlcv" / "binance_spot_BTCUSDT_1m_20250520-20250719.csv.gz").iloc[:600]
    first = int(eth["open_time"].iloc[0])
    build = sample_set_builder(start_ms=first, end_ms=first + 600 * 60_000, horizons_min=(1, 5, 15))
    result = training_window_check(build, {"1m": eth, "BTCUSDT/1m": btc.reset_index(drop=True)}, samples=2, seed=3)
    assert result["leaks"] == []
    assert result["samples"] == 600 - 299  # every minute from a full 300-row 1m tail on; returns may be NaN
    assert all(c["compared"] > c["labelled"] > 0 for c in result["cuts"])
