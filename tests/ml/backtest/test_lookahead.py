"""Look-ahead comparisons (ml.backtest.lookahead): cut points over the whole span, recorded inputs,
the structural ring rule and decision changes as leaks."""
import numpy as np
import pytest

from ml.backtest.lookahead import (
    CANDLE_STORE,
    STREAM,
    InputLog,
    cut_points,
    decision_changes,
    decision_leaks,
    input_leaks,
    max_abs_diff,
    ring_leaks,
    summarize,
)

HOUR = 3_600_000


def test_cut_points_draw_one_second_from_each_stratum_of_the_span():
    seconds = list(range(0, 100_000, 1000))  # 100 seconds; the last is never a cut
    cuts = cut_points(seconds, 4, seed=7)
    assert cuts == cut_points(seconds, 4, seed=7) and cuts != cut_points(seconds, 4, seed=8)
    # 99 candidates in 4 strata of 25/24/25/25: one cut in each
    assert [c // 1000 for c in cuts][0] < 25 <= cuts[1] // 1000 < 50 <= cuts[2] // 1000 < 74 <= cuts[3] // 1000 < 99


def test_cut_points_take_every_second_of_a_short_span_and_refuse_zero_samples():
    assert cut_points([3000, 1000, 2000], 5) == [1000, 2000]
    with pytest.raises(ValueError, match="samples must be >= 1"):
        cut_points([1, 2, 3], 0)


def test_a_changed_decision_is_a_leak_with_the_size_of_the_change():
    full = {1: ("HOLD", 0.54, 0.2, 0.26, 0.54), 2: ("HOLD", 0.5, 0.25, 0.25, 0.5)}
    cut = {1: ("HOLD", 0.54, 0.2, 0.26, 0.54), 2: ("BUY", 0.503, 0.503, 0.0, 0.497)}
    (leak,) = decision_leaks(STREAM, 2, decision_changes(full, cut, 2))
    assert (leak.kind, leak.component, leak.ts, leak.cut_ms) == (STREAM, "decision", 2, 2)
    assert leak.old[0] == "HOLD" and leak.new[0] == "BUY"
    assert leak.max_abs_diff == pytest.approx(0.253)
    (missing,) = decision_leaks(STREAM, 2, decision_changes(full, {1: full[1]}, 2))
    assert missing.max_abs_diff is None and missing.new is None


def test_the_input_log_reports_each_changed_component_and_how_much_it_moved():
    rng = np.random.default_rng(0)
    hour = rng.normal(size=(300, 5)).astype(np.float32)
    cob = rng.normal(size=(300, 87)).astype(np.float32)
    present = {"primary_1h": np.ones(300, bool), "cob": np.ones(300, bool)}
    log = InputLog(keep=["primary_1h"])
    log.record(1000, {"primary_1h": hour, "cob": cob}, present)
    assert log.differences(1000, {"primary_1h": hour.copy(), "cob": cob.copy()}, present) == []

    moved = hour.copy()
    moved[-1, 3] += 0.25
    cob2 = cob.copy()
    cob2[0, 0] = 9.0
    mask = {"primary_1h": present["primary_1h"].copy(), "cob": present["cob"]}
    mask["primary_1h"][-1] = False
    diffs = log.differences(1000, {"primary_1h": moved, "cob": cob2}, mask)
    # The COB is kept by digest only: its size of change is unknown (its mask, the same as primary_1h's, is known).
    assert diffs == [("cob", None, 0), ("primary_1h", pytest.approx(0.25), 1)]
    (leak, _) = sorted(input_leaks(CANDLE_STORE, 500, 1000, diffs), key=lambda x: x.component, reverse=True)
    assert leak.component == "primary_1h" and leak.max_abs_diff == pytest.approx(0.25) and "1 present rows" in leak.detail
    assert log.differences(2000, {"cob": cob}, present) == [("cob", None, None)]  # a second the log never saw


def test_max_abs_diff_treats_nan_as_equal_to_nan_only():
    a = np.array([1.0, np.nan, 3.0])
    assert max_abs_diff(a, np.array([1.0, np.nan, 3.5])) == 0.5
    assert max_abs_diff(a, np.array([1.0, 2.0, 3.0])) == float("inf")
    with pytest.raises(ValueError, match="shapes differ"):
        max_abs_diff(a, np.zeros(2))


def test_a_ring_holding_the_hour_in_progress_breaks_the_rule_until_that_hour_closes():
    hour_open = 1_723_158_000_000  # 2024-08-08 23:00 UTC
    at = hour_open + 54 * 60_000 + 10_000  # 23:54:10, the hour still in progress
    (leak,) = ring_leaks(at, {"ETHUSDT/1h": (hour_open, HOUR), "ETHUSDT/1m": (at - 60_000, 60_000)})
    assert (leak.kind, leak.component, leak.ts) == (CANDLE_STORE, "ETHUSDT/1h ring", at)
    assert str(hour_open + HOUR) in leak.detail
    last_second = hour_open + HOUR - 1000  # its close is the end of this second: allowed
    assert ring_leaks(last_second, {"ETHUSDT/1h": (hour_open, HOUR), "ETHUSDT/1s": (last_second, 1000),
                                    "empty": (None, HOUR)}) == []
    assert summarize([leak, leak]) == {CANDLE_STORE: {"ETHUSDT/1h ring": 2}}
