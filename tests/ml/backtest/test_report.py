"""Report maths on small hand-computed series (ml.backtest.report, ml.backtest.lookahead)."""
import hashlib
import math

import pytest

from ml.backtest.lookahead import cut_points, decision_changes
from ml.backtest.report import CSV_HEADER, Fill, backtest_report, buy_and_hold, order_log_sha256, round_trips, series_csv


def test_a_long_round_trip_pays_both_fees():
    fills = [Fill(0, "BUY", 1.0, 100.0, 0.10), Fill(1000, "SELL", 1.0, 110.0, 0.11)]
    assert round_trips(fills) == [pytest.approx(10 - 0.21)]


def test_a_fill_through_zero_closes_one_trip_and_opens_the_next():
    # long 1 @100, sell 2 @110 (closes +10, opens short 1 @110), buy 1 @120 (short loses 10); fees 0.
    fills = [Fill(0, "BUY", 1.0, 100.0, 0.0), Fill(1, "SELL", 2.0, 110.0, 0.0), Fill(2, "BUY", 1.0, 120.0, 0.0)]
    assert round_trips(fills) == [pytest.approx(10.0), pytest.approx(-10.0)]


def test_the_fee_of_a_flipping_fill_is_split_by_quantity():
    fills = [Fill(0, "SELL", 1.0, 100.0, 0.0), Fill(1, "BUY", 2.0, 90.0, 0.2), Fill(2, "SELL", 1.0, 95.0, 0.0)]
    assert round_trips(fills) == [pytest.approx(10 - 0.1), pytest.approx(5 - 0.1)]


def test_an_open_position_is_not_a_round_trip():
    assert round_trips([Fill(0, "BUY", 1.0, 100.0, 0.1)]) == []


def test_buy_and_hold_pays_the_fee_once_and_follows_the_mid():
    assert list(buy_and_hold([100.0, 110.0, 90.0], 1000.0, 0.001)) == pytest.approx([999.0, 1098.9, 899.1])


def test_the_report_of_a_small_series():
    ts = [0, 1000, 2000, 3000]
    mid = [100.0, 101.0, 99.0, 102.0]
    equity = [1000.0, 1010.0, 990.0, 1020.0]
    position = [0.0, 1.0, 1.0, 0.0]
    fills = [Fill(500, "BUY", 1.0, 100.0, 0.0), Fill(2500, "SELL", 1.0, 120.0, 0.0)]
    report = backtest_report(ts=ts, mid=mid, equity=equity, position=position, fills=fills, fee_rate=0.0)
    s = report["strategy"]
    assert s["pnl"] == 20.0 and s["return"] == pytest.approx(0.02)
    assert s["max_drawdown"] == pytest.approx(20 / 1010, abs=1e-8)  # peak 1010 -> 990
    assert s["exposure"] == 0.5 and s["trades"] == 2 and s["round_trips"] == 1 and s["win_rate"] == 1.0
    r = [0.01, 990 / 1010 - 1, 1020 / 990 - 1]
    mean = sum(r) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)
    # 3 s of returns: per-second ratios, never annualised (ml.backtest.report MIN_SPAN_DAYS)
    assert s["sharpe"]["value"] == pytest.approx(mean / sd, rel=1e-6) and s["sharpe"]["annualised"] is False
    downside = math.sqrt(sum(min(x, 0) ** 2 for x in r) / 3)
    assert s["sortino"]["value"] == pytest.approx(mean / downside, rel=1e-6) and not s["sortino"]["annualised"]
    assert s["max_drawdown_bps"] == pytest.approx(20 / 1010 * 10_000, abs=1e-4)
    assert report["buy_and_hold"]["pnl"] == pytest.approx(20.0) and report["buy_and_hold"]["exposure"] == 1.0
    hold = report["always_hold"]
    assert hold["pnl"] == 0 and hold["sharpe"]["value"] is None and "zero variance" in hold["sharpe"]["reason"]
    assert hold["max_drawdown"] == 0 and hold["trades"] == 0


def test_series_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="series lengths differ"):
        backtest_report(ts=[0, 1], mid=[1.0], equity=[1.0, 1.0], position=[0.0, 0.0], fills=[], fee_rate=0.0)


def test_the_order_log_hash_covers_time_side_quantity_price_and_status():
    orders = [(1000, "BUY", "0.3700", "2700.10", "FILLED"), (2000, "SELL", "0.3700", None, "REJECTED")]
    expected = hashlib.sha256(b"1000 BUY 0.3700 2700.10 FILLED\n2000 SELL 0.3700  REJECTED").hexdigest()
    assert order_log_sha256(orders) == expected
    assert order_log_sha256(orders[::-1]) != expected


def test_the_csv_has_a_header_and_one_row_per_second():
    text = series_csv(ts=[0, 1000], mid=[100.0, 99.0], equity=[1000.0, 990.0], position=[0.0, 1.0], fee_rate=0.0)
    lines = text.strip().split("\n")
    assert lines[0] == ",".join(CSV_HEADER) and len(lines) == 3
    assert lines[2] == "1000,99.00,990.0000,1.00000000,0.010000,990.0000"


def test_cut_points_are_seeded_distinct_and_never_the_last_second():
    seconds = list(range(0, 100_000, 1000))
    cuts = cut_points(seconds, 5, seed=3)
    assert cuts == cut_points(seconds, 5, seed=3) and len(set(cuts)) == 5 and 99_000 not in cuts


def test_a_changed_or_missing_decision_before_the_cut_is_reported():
    full = {1: ("BUY", 0.5), 2: ("HOLD", 0.4), 3: ("SELL", 0.6), 4: ("BUY", 0.7)}
    truncated = {1: ("BUY", 0.5), 2: ("HOLD", 0.41)}
    assert decision_changes(full, truncated, 3) == [
        {"ts": 2, "full": ("HOLD", 0.4), "truncated": ("HOLD", 0.41)},
        {"ts": 3, "full": ("SELL", 0.6), "truncated": None}]
