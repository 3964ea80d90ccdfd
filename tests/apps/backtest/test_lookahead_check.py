"""The look-ahead check over the recorded session's first 80 seconds: the pipeline has no leak; one
planted leak of each kind is caught (the training-window kind: tests/ml/backtest/test_lookahead_training.py
and the last test here)."""
import dataclasses
import io
import json
from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command

from apps.backtest.lookahead import lookahead_check
from apps.market import selectors as market_selectors
from apps.market.convert import ms_to_datetime
from ml.backtest.lookahead import CANDLE_STORE, STREAM, TRAINING_WINDOW
from ml.backtest.lookahead_training import TrainingSamples, candle_dataset_builder
from ml.data.history import load_ohlcv_csv
from ml.market.recording import default_data_dir

pytestmark = pytest.mark.django_db
SPAN_S = 80
HOUR = 3_600_000


@pytest.fixture
def end(pipeline_ready, settings):
    """The end of the span (datetime): the first SPAN_S seconds; the completeness gate off, so every
    second is decided."""
    from apps.backtest.services import recording_span_ms
    from apps.pipeline.runner import default_recordings

    settings.GOGO_MIN_COMPLETENESS = 0.0
    first, _ = recording_span_ms(default_recordings()["ETHUSDT"])
    return ms_to_datetime(first // 1000 * 1000 + SPAN_S * 1000)


@pytest.fixture(scope="module")
def short_history():
    """600 minutes of 2025 ETHUSDT 1m candles and a 1m-only candle dataset over them."""
    frame = load_ohlcv_csv(default_data_dir() / "ohlcv" / "binance_spot_ETHUSDT_1m_20250520-20250719.csv.gz")
    history = {"1m": frame.iloc[:600].reset_index(drop=True)}
    first = int(history["1m"]["open_time"].iloc[0])
    return history, candle_dataset_builder(start_ms=first, end_ms=first + 600 * 60_000, components=("primary_1m",))


def peek_at_the_next_close(inputs, next_second):
    """Test-only leak: the newest 1 s and 1 m closes replaced by the *next* second's close (when known)."""
    candle = next_second.candles.get(inputs.symbol) if next_second is not None else None
    if candle is not None:
        for name in ("primary_1s", "primary_1m"):
            rows = np.array(inputs.components[name], copy=True)
            rows[-1, 3] = candle.close * 1.01
            inputs.components[name] = rows
    return inputs


def test_the_pipeline_reads_nothing_after_a_cut_of_the_stream_the_store_or_the_history(end, short_history):
    history, build = short_history
    result = lookahead_check(samples=2, seed=1, end=end, training_samples=2,
                             training_builders={"candle_dataset": (build, history)})
    assert result["leaks"] == [] and result["passed"] and result["leak_count"] == 0
    assert result["seconds"] == SPAN_S and result["decisions"] == SPAN_S - 1  # the account opens at the first second
    assert result["decisions"] >= SPAN_S - 5
    cuts = result["cuts"]
    assert [c["kind"] for c in cuts] == [STREAM, CANDLE_STORE] * 2
    assert all(c["compared_seconds"] > 0 and c["compared_decisions"] > 0 for c in cuts)
    assert all(c["altered_candles"] > 40_000 for c in cuts if c["kind"] == CANDLE_STORE)  # the month of 1m after
    report = result["training_window"]["candle_dataset"]
    assert report["samples"] == 600 - 299 - 5 and len(report["cuts"]) == 2


def test_an_input_builder_that_reads_one_second_ahead_is_caught(end):
    result = lookahead_check(samples=1, seed=1, end=end, kinds=(STREAM,), input_hook=peek_at_the_next_close)
    assert not result["passed"] and result["by_kind"].keys() == {STREAM}
    cut_ms = result["cuts"][0]["cut_ms"]
    at_cut = {leak["component"]: leak for leak in result["leaks"] if leak["ts"] == cut_ms}
    # At the cut the truncated run has no next second: its newest closes are the real ones.
    assert {"primary_1s", "primary_1m", "decision"} <= at_cut.keys()
    assert at_cut["primary_1s"]["max_abs_diff"] > 20  # 1% of an ETH price of ~2,600 USD
    assert at_cut["decision"]["old"] != at_cut["decision"]["new"]


def _serve_the_hour_in_progress_as_the_last_closed_one(monkeypatch):
    """Test-only leak in the candle reader: asked for the closed 1h candles, it returns them with the
    newest one's prices taken from the hour in progress (a "latest bar" merged into the history)."""
    real = market_selectors.candle_list

    def leaky(*, instrument, timeframe, end, limit):
        closed = real(instrument=instrument, timeframe=timeframe, end=end, limit=limit)
        if timeframe != "1h" or not closed:
            return closed
        in_progress = market_selectors.candle_get(instrument=instrument, timeframe="1h",
                                                  open_time=ms_to_datetime(closed[-1].open_time + HOUR))
        if in_progress is not None:
            closed[-1] = dataclasses.replace(in_progress, open_time=closed[-1].open_time)
        return closed

    monkeypatch.setattr(market_selectors, "candle_list", leaky)


def test_a_candle_reader_that_serves_the_hour_in_progress_is_caught(end, monkeypatch):
    _serve_the_hour_in_progress_as_the_last_closed_one(monkeypatch)
    result = lookahead_check(samples=1, seed=1, end=end, kinds=(STREAM, CANDLE_STORE))
    assert result["by_kind"].keys() == {CANDLE_STORE}  # cutting the stream alone cannot see it
    components = {leak["component"] for leak in result["leaks"]}
    assert {"primary_1h", "decision"} <= components
    hour = next(leak for leak in result["leaks"] if leak["component"] == "primary_1h")
    assert hour["max_abs_diff"] > 5  # the altered hour moved by 0.5-1.5% of ~2,700 USD
    changed = [leak for leak in result["leaks"] if leak["component"] == "decision"]
    assert all(leak["old"][4] != leak["new"][4] for leak in changed)  # P(HOLD) of the mixture moved


def test_a_ring_holding_a_candle_that_has_not_closed_is_caught_structurally(end, monkeypatch):
    real = market_selectors.candle_list

    def one_period_too_many(*, instrument, timeframe, end, limit):  # the in-progress bar at its own open time
        period = {"1m": 60_000, "1h": HOUR}.get(timeframe, 0)
        return real(instrument=instrument, timeframe=timeframe, end=end + timedelta(milliseconds=period), limit=limit)

    monkeypatch.setattr(market_selectors, "candle_list", one_period_too_many)
    result = lookahead_check(samples=1, seed=1, end=end, kinds=(CANDLE_STORE,), decisions=False)
    rings = {leak["component"] for leak in result["leaks"] if leak["component"].endswith("ring")}
    assert {"ETHUSDT/1h ring", "BTCUSDT/1h ring"} <= rings
    first = min(leak["ts"] for leak in result["leaks"] if leak["component"] == "ETHUSDT/1h ring")
    assert "closes at 1723161600000" in next(leak["detail"] for leak in result["leaks"] if leak["ts"] == first
                                              and leak["component"] == "ETHUSDT/1h ring")  # 2024-08-09 00:00


def test_a_training_feature_that_reads_the_labels_future_close_is_reported(end, short_history):
    history, build = short_history

    def leaky(hist):
        samples = build(hist)
        return TrainingSamples(samples.times, samples.label_times,
                               {**samples.features, "future_close": samples.labels["return"][:, None]}, samples.labels)

    result = lookahead_check(kinds=(TRAINING_WINDOW,), training_samples=2, training_builders={"leaky": (leaky, history)})
    assert result["by_kind"] == {TRAINING_WINDOW: {"leaky/future_close": 2}} and result["cuts"] == []


def test_the_command_prints_a_json_report_and_exits_1_on_a_leak(end, monkeypatch):
    args = ("lookahead_check", "--samples", "1", "--inputs-only", "--kind", "candle_store", "--end", end.isoformat())
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    report = json.loads(text[:text.rindex("lookahead_check ")])
    assert report["passed"] and report["leak_count"] == 0 and len(report["cuts"]) == 1
    assert text.rstrip().endswith("lookahead_check PASSED: no leak over 1 cut(s) (candle_store)")

    _serve_the_hour_in_progress_as_the_last_closed_one(monkeypatch)
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command(*args, stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    report = json.loads(text[:text.rindex("lookahead_check ")])
    assert exit_.value.code == 1 and "lookahead_check FAILED" in text
    assert {leak["component"] for leak in report["leaks"]} == {"primary_1h"}
