"""COB frames: bucket maths checked by hand and against the peer benchmark's definition."""
from __future__ import annotations

import importlib.util
import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from ml.market.cob import ImbalanceMA, cob_frame
from ml.market.events import CobFrame
from ml.market.orderbook import OrderBook
from ml.market.session import MarketSession
from tests.ml.market.recorded import HAND_CHECKED_SECOND, SPOT_SPECS

N = 20


def _frame_at(spot_run, symbol: str, ts: int) -> CobFrame:
    return next(f for f in spot_run.frames[symbol] if f.ts == ts)


def _plain_buckets(levels: list[tuple[float, float]], first: float, width: float) -> list[float]:
    """USD per bucket by scanning bucket edges, level by level (no floor division)."""
    sums = [0.0] * (2 * N + 1)
    for i in range(2 * N + 1):
        low, high = first + i * width, first + (i + 1) * width
        for price, size in levels:
            if low <= price < high:
                sums[i] += price * size
    return sums


def test_one_eth_second_matches_a_plain_python_loop_and_hand_values(spot_run):
    book = spot_run.books["ETHUSDT"]  # the book at the end of 2024-08-08 23:59:00
    frame = _frame_at(spot_run, "ETHUSDT", HAND_CHECKED_SECOND)

    # Hand check: best 2683.98 / 2683.99 -> mid 2683.985, center 2683, first bucket 2663.
    assert (frame.best_bid, frame.best_ask) == (2683.98, 2683.99)
    assert frame.mid == pytest.approx(2683.985, abs=1e-9)
    assert frame.first_bucket_price == 2663.0
    # Bucket 20 = [2683, 2684): the only ask level is 2683.99 x 1.6528.
    assert frame.ask_usd[20] == pytest.approx(2683.99 * 1.6528, rel=1e-12)
    assert frame.ask_usd[20] == pytest.approx(4436.098672, abs=1e-6)
    assert frame.bid_usd[20] == pytest.approx(408645.130184, abs=1e-6)
    assert frame.bid_usd[18] == pytest.approx(663124.919071, abs=1e-6)  # [2681, 2682)
    assert frame.imbalance_5 == pytest.approx(0.0359840818, abs=1e-9)

    bids = _plain_buckets(book.levels("bid"), 2663.0, 1.0)
    asks = _plain_buckets(book.levels("ask"), 2663.0, 1.0)
    assert frame.bid_usd.tolist() == pytest.approx(bids, rel=1e-12, abs=1e-9)
    assert frame.ask_usd.tolist() == pytest.approx(asks, rel=1e-12, abs=1e-9)
    bid5, ask5 = sum(bids[15:26]), sum(asks[15:26])
    assert frame.imbalance_5 == pytest.approx((bid5 - ask5) / (bid5 + ask5), rel=1e-12)


def test_per_bucket_imbalance_is_zero_where_both_sides_are_empty(spot_run):
    frame = _frame_at(spot_run, "ETHUSDT", HAND_CHECKED_SECOND)
    b, a = frame.bid_usd[20], frame.ask_usd[20]

    assert frame.imbalance[0] == 1.0  # bids only below the mid
    assert frame.imbalance[40] == -1.0
    assert frame.imbalance[20] == pytest.approx((b - a) / (b + a), rel=1e-12)
    assert np.all((frame.imbalance >= -1) & (frame.imbalance <= 1))
    assert frame.bid_usd.shape == frame.ask_usd.shape == frame.imbalance.shape == (41,)


def test_the_grid_follows_the_mid_bucket_and_shifts_whole_buckets(spot_run):
    shifts = 0
    for symbol, spec in (("ETHUSDT", SPOT_SPECS[0]), ("BTCUSDT", SPOT_SPECS[1])):
        frames = spot_run.frames[symbol]
        w = spec.bucket_width
        for prev, frame in itertools.pairwise(frames):
            center = frame.first_bucket_price + N * w
            assert center <= frame.mid < center + w  # bucket N holds the mid
            assert center == math.floor(frame.mid / w) * w
            moved = (frame.first_bucket_price - prev.first_bucket_price) / w
            assert moved == round(moved)  # the grid only ever moves by whole buckets
            shifts += moved != 0
    assert shifts > 50  # the mid crossed bucket edges many times in 11 minutes


def _load_peer(data_dir: Path):
    path = data_dir.parent / "bench" / "peer_orderbook.py"
    if not path.is_file():
        pytest.fail(f"peer benchmark not found at {path}")
    spec = importlib.util.spec_from_file_location("peer_orderbook", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_frame_equals_the_peer_benchmark_buckets(data_dir, spot_venue):
    peer = _load_peer(data_dir)
    assert peer.NB == N
    compared = 0
    for result in MarketSession(spot_venue, SPOT_SPECS).seconds():
        for spec in SPOT_SPECS:
            book, frame = result.books[spec.symbol], result.frames[spec.symbol]
            bids, asks = peer.buckets_from_sorted(book.levels("bid"), book.levels("ask"),
                                                  spec.bucket_width)
            np.testing.assert_allclose(frame.bid_usd, bids, rtol=0, atol=1e-9)
            np.testing.assert_allclose(frame.ask_usd, asks, rtol=0, atol=1e-9)
            compared += 1
    assert compared == 1300


def test_an_empty_book_has_no_frame():
    assert cob_frame(OrderBook(), "ETHUSDT", HAND_CHECKED_SECOND, 1.0) is None


def test_a_non_positive_bucket_width_is_refused(spot_run):
    with pytest.raises(ValueError, match="bucket_width must be > 0"):
        cob_frame(spot_run.books["ETHUSDT"], "ETHUSDT", HAND_CHECKED_SECOND, 0.0)


def _frame(imbalance_5: float) -> CobFrame:
    zeros = np.zeros(2 * N + 1)
    return CobFrame("ETHUSDT", 0, 1.0, 1.0, 1.0, 1.0, N, 0.0, zeros, zeros, zeros, imbalance_5)


def test_moving_averages_use_the_seconds_available_at_the_start():
    ma = ImbalanceMA(windows=(1, 2, 3))
    outputs = [dict(ma.update(_frame(v)).imbalance_ma) for v in (0.3, -0.3, 0.6, 0.0)]

    assert outputs[0] == pytest.approx({"1s": 0.3, "2s": 0.3, "3s": 0.3})
    assert outputs[1] == pytest.approx({"1s": -0.3, "2s": 0.0, "3s": 0.0})
    assert outputs[2] == pytest.approx({"1s": 0.6, "2s": 0.15, "3s": 0.2})
    assert outputs[3] == pytest.approx({"1s": 0.0, "2s": 0.3, "3s": 0.1})


def test_session_frames_carry_1s_5s_15s_60s_means_of_imbalance_5(spot_run):
    frames = spot_run.frames["ETHUSDT"]
    values = [f.imbalance_5 for f in frames]

    for k, frame in enumerate(frames):
        assert set(frame.imbalance_ma) == {"1s", "5s", "15s", "60s"}
        assert frame.imbalance_ma["1s"] == frame.imbalance_5
        for n in (5, 15, 60):
            window = values[max(0, k - n + 1):k + 1]
            assert frame.imbalance_ma[f"{n}s"] == pytest.approx(sum(window) / len(window),
                                                                 abs=1e-12)
    hand = _frame_at(spot_run, "ETHUSDT", HAND_CHECKED_SECOND)
    assert hand.imbalance_ma["60s"] == pytest.approx(-0.0361382478, abs=1e-9)


def test_moving_average_windows_must_be_positive():
    with pytest.raises(ValueError, match="windows must be positive"):
        ImbalanceMA(windows=(0, 5))


def test_bucket_moving_averages_follow_prices_across_real_grid_shifts(spot_run):
    frames = spot_run.frames["BTCUSDT"]
    shifted = [k for k in range(5, len(frames)) if frames[k].first_bucket_price != frames[k - 1].first_bucket_price]
    assert len(shifted) > 20
    for k in shifted:
        frame = frames[k]
        for i in (0, 15, 20, 25, 40):
            price = frame.first_bucket_price + i * frame.bucket_width
            values = []
            for past in frames[k - 4:k + 1]:  # the last 5 seconds, this one included
                j = round((price - past.first_bucket_price) / past.bucket_width)
                if 0 <= j <= 40:
                    values.append(past.imbalance[j])
            assert frame.bucket_imbalance_ma["5s"][i] == pytest.approx(sum(values) / len(values), abs=1e-12)
        # by index instead of price the mean would differ: the history really moved with the grid
        by_index = np.mean([f.imbalance for f in frames[k - 4:k + 1]], axis=0)
        assert not np.allclose(by_index, frame.bucket_imbalance_ma["5s"])
