"""Binance local-book sync rules on the recorded streams, with injected faults."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from ml.market.events import OrderBookDelta, OrderBookSnapshot
from ml.market.replay import ReplayVenue
from ml.market.sync import BookSynchronizer

FUTURES_RUNS = {
    "ETHUSDT 2024-08-08": ("ETHUSDT", ["ethusdt_20240808.gz"], 6581),
    "BTCUSDT 2024-08-08": ("BTCUSDT", ["btcusdt_20240808.gz"], 6547),
    "ETHUSDT 2024-07-18": ("ETHUSDT", ["ethusdt_20240718.gz", "ethusdt_20240719.gz"], 8924),
    "BTCUSDT 2023-04-04 (us timestamps)":
        ("BTCUSDT", ["btcusdt_20230404.dat.gz", "btcusdt_20230405.dat.gz"], 16110),
}


def replay_sync(venue: ReplayVenue, symbol: str, rule: str,
                check_after_resync: bool = False) -> BookSynchronizer:
    """Feed every event of ``venue`` to a synchronizer that resyncs from the venue."""
    sync = BookSynchronizer(symbol, rule, snapshot_source=venue.snapshot)
    resyncs_checked = 0
    for event in venue.events():
        if event.symbol != symbol:
            continue
        if isinstance(event, OrderBookSnapshot):
            sync.apply_snapshot(event)
        elif isinstance(event, OrderBookDelta):
            sync.apply_delta(event)
            if check_after_resync and sync.stats.resyncs > resyncs_checked:
                resyncs_checked = sync.stats.resyncs
                assert sync.synced
                assert sync.book == venue.truth_book(symbol)  # right after the resync
                assert not sync.book.is_crossed()
        assert not (sync.synced and sync.book.is_crossed())
    return sync


def test_the_whole_spot_session_applies_with_no_gap_and_never_crosses(spot_run):
    for symbol, applied in (("ETHUSDT", 6468), ("BTCUSDT", 6493)):
        stats = spot_run.stats[symbol]
        assert stats["gaps"] == 0  # a crossed book would count as a gap
        assert stats["resyncs"] == 0
        assert stats["deltas_applied"] == applied
        assert stats["deltas_dropped"] == 2  # recorded before the snapshot, covered by it
        assert spot_run.end_books_equal_truth[symbol]
    assert spot_run.crossed_seconds == 0


def test_the_spot_btc_book_ends_as_the_data_readme_says(spot_run):
    book = spot_run.end_books["BTCUSDT"]

    assert (book.best_bid(), book.best_ask()) == (61602.01, 61602.02)
    assert (book.depth("bid"), book.depth("ask")) == (1971, 2962)


@pytest.fixture(scope="module")
def eth_futures_venue(data_dir: Path) -> ReplayVenue:
    return ReplayVenue({"ETHUSDT": [data_dir / "orderbook/binance_usdm/ethusdt_20240808.gz"]})


@pytest.fixture(scope="module")
def eth_spot_venue(spot_recordings) -> ReplayVenue:
    return ReplayVenue({"ETHUSDT": spot_recordings["ETHUSDT"]})


@pytest.mark.parametrize("run", list(FUTURES_RUNS))
def test_futures_recordings_sync_with_the_pu_rule(data_dir: Path, run: str, request):
    symbol, files, applied = FUTURES_RUNS[run]
    if run == "ETHUSDT 2024-08-08":
        venue = request.getfixturevalue("eth_futures_venue")
    else:
        venue = ReplayVenue({symbol: [data_dir / "orderbook/binance_usdm" / f for f in files]})

    sync = replay_sync(venue, symbol, "futures")

    assert sync.stats.gaps == 0
    assert sync.stats.resyncs == 0
    assert sync.stats.deltas_applied == applied
    assert sync.synced
    assert sync.book == venue.truth_book(symbol)


def test_a_futures_delta_ending_exactly_at_the_snapshot_id_is_applied(eth_futures_venue):
    sync = BookSynchronizer("ETHUSDT", "futures")

    for event in eth_futures_venue.events():
        if isinstance(event, OrderBookSnapshot):
            sync.apply_snapshot(event)
            break
        if isinstance(event, OrderBookDelta):
            sync.apply_delta(event)

    # Docs: drop u < lastUpdateId; the first event has U <= lastUpdateId <= u. The recorded
    # diff 5123107853791..5123107856276 ends exactly at lastUpdateId 5123107856276.
    assert sync.synced
    assert sync.stats.deltas_applied >= 1
    assert sync.stats.gaps == 0


def test_a_spot_delta_straddling_the_snapshot_id_is_applied_first(spot_venue):
    sync = BookSynchronizer("BTCUSDT", "spot")

    for event in spot_venue.events():
        if event.symbol != "BTCUSDT":
            continue
        if isinstance(event, OrderBookSnapshot):
            sync.apply_snapshot(event)
            break
        if isinstance(event, OrderBookDelta):
            sync.apply_delta(event)

    # Snapshot lastUpdateId 50093239218; buffered diff U=50093239208 u=50093239224 covers 219.
    assert sync.stats.deltas_dropped == 2
    assert sync.stats.deltas_applied == 1
    assert sync.last_update_id == 50093239224


@pytest.fixture(scope="module")
def eth_spot_deltas(eth_spot_venue) -> list[OrderBookDelta]:
    return [e for e in eth_spot_venue.events() if isinstance(e, OrderBookDelta)]


def test_a_dropped_spot_delta_is_a_gap_then_a_resync_to_the_venue_book(
        eth_spot_venue, eth_spot_deltas, caplog):
    venue = eth_spot_venue.with_drops({"ETHUSDT": {3000}})

    with caplog.at_level(logging.WARNING, logger="ml.market.sync"):
        sync = replay_sync(venue, "ETHUSDT", "spot", check_after_resync=True)

    assert (sync.stats.gaps, sync.stats.resyncs) == (1, 1)
    assert venue.counts["ETHUSDT"]["withheld"] == 1
    gap = sync.last_gap
    assert gap.expected == eth_spot_deltas[2999].final_update_id + 1
    assert gap.got == eth_spot_deltas[3001].first_update_id
    assert f"expected {gap.expected}, got {gap.got}" in caplog.text
    assert sync.synced
    assert sync.book == venue.truth_book("ETHUSDT")
    assert sync.stats.deltas_applied == 6468 - 2  # the withheld one and the one that hit the gap


def test_a_dropped_futures_delta_is_a_gap_then_a_resync_to_the_venue_book(eth_futures_venue):
    venue = eth_futures_venue.with_drops({"ETHUSDT": {2500}})

    sync = replay_sync(venue, "ETHUSDT", "futures", check_after_resync=True)

    assert (sync.stats.gaps, sync.stats.resyncs) == (1, 1)
    assert sync.last_gap.reason == "pu != previous u"
    assert sync.book == venue.truth_book("ETHUSDT")


def test_two_consecutive_dropped_deltas_are_one_gap(eth_spot_venue):
    venue = eth_spot_venue.with_drops({"ETHUSDT": {100, 101}})

    sync = replay_sync(venue, "ETHUSDT", "spot")

    assert (sync.stats.gaps, sync.stats.resyncs) == (1, 1)
    assert sync.book == venue.truth_book("ETHUSDT")


def test_dropping_a_delta_the_snapshot_covers_is_no_gap(eth_spot_venue):
    venue = eth_spot_venue.with_drops({"ETHUSDT": {0}})

    sync = replay_sync(venue, "ETHUSDT", "spot")

    assert (sync.stats.gaps, sync.stats.resyncs) == (0, 0)
    assert sync.book == venue.truth_book("ETHUSDT")


@pytest.fixture(scope="module")
def eth_snapshot(eth_spot_venue) -> OrderBookSnapshot:
    return next(e for e in eth_spot_venue.events() if isinstance(e, OrderBookSnapshot))


def _crossing_delta(snapshot: OrderBookSnapshot) -> OrderBookDelta:
    """A bid at the snapshot's best ask, continuing its update id chain."""
    uid = snapshot.last_update_id + 1
    return OrderBookDelta("ETHUSDT", 1723161255500, uid, uid, None,
                          bids=((snapshot.asks[0][0], 1.0),), asks=())


def test_a_delta_that_crosses_the_book_is_a_gap_and_is_never_published(eth_snapshot):
    crossing = _crossing_delta(eth_snapshot)
    fresh = dataclasses.replace(eth_snapshot, last_update_id=crossing.final_update_id)
    sync = BookSynchronizer("ETHUSDT", "spot", snapshot_source=lambda symbol: fresh)
    sync.apply_snapshot(eth_snapshot)

    sync.apply_delta(crossing)

    assert (sync.stats.gaps, sync.stats.resyncs) == (1, 1)
    assert sync.last_gap.reason == "crossed book"
    assert sync.synced and not sync.book.is_crossed()
    assert sync.book.best_bid() == 2683.8


def test_without_a_snapshot_source_it_waits_unsynced_for_the_next_snapshot(eth_snapshot):
    crossing = _crossing_delta(eth_snapshot)
    sync = BookSynchronizer("ETHUSDT", "spot")
    sync.apply_snapshot(eth_snapshot)

    sync.apply_delta(crossing)
    assert not sync.synced
    assert (sync.stats.gaps, sync.stats.resyncs) == (1, 0)

    sync.apply_snapshot(dataclasses.replace(eth_snapshot,
                                            last_update_id=crossing.final_update_id))
    assert sync.synced
    assert sync.stats.resyncs == 1


def test_deltas_before_any_snapshot_are_buffered_not_applied(eth_spot_deltas):
    sync = BookSynchronizer("ETHUSDT", "spot")

    for delta in eth_spot_deltas[:10]:
        sync.apply_delta(delta)

    assert not sync.synced
    assert sync.stats.deltas_applied == 0
    assert sync.book.best_bid() is None


def test_it_rejects_an_unknown_rule():
    with pytest.raises(ValueError, match="rule must be 'spot' or 'futures'"):
        BookSynchronizer("ETHUSDT", "coin-m")
