"""The replay venue: exchange-time merge, truth book, snapshots, fault injection."""
from __future__ import annotations

import pytest

from ml.market.errors import MarketDataError
from ml.market.events import OrderBookDelta, OrderBookSnapshot, Trade
from ml.market.recording import read_recording
from ml.market.replay import ReplayVenue


def _late_trades(events) -> int:
    """Trades seen after a depth message of a later exchange second."""
    last_depth_second, late = None, 0
    for event in events:
        if isinstance(event, OrderBookDelta):
            last_depth_second = event.ts_event // 1000
        elif isinstance(event, Trade) and last_depth_second is not None:
            late += event.ts_event // 1000 < last_depth_second
    return late


def test_it_merges_both_symbols_in_exchange_time_order(spot_venue):
    events = list(spot_venue.events())
    times = [e.ts_event for e in events if e.ts_event is not None]

    assert times == sorted(times)
    assert len(events) == (6470 + 14515 + 1) + (6495 + 19904 + 1)
    assert {e.symbol for e in events[:200]} == {"ETHUSDT", "BTCUSDT"}  # interleaved


def test_file_order_is_kept_within_a_symbol(spot_venue):
    eth = [e for e in spot_venue.events() if e.symbol == "ETHUSDT"]
    trade_ids = [e.trade_id for e in eth if isinstance(e, Trade)]
    update_ids = [e.final_update_id for e in eth if isinstance(e, OrderBookDelta)]

    assert trade_ids == list(range(trade_ids[0], trade_ids[0] + 14515))  # no gap, no swap
    assert update_ids == sorted(update_ids)


def test_sorting_by_exchange_time_fixes_trades_that_arrive_after_the_next_second(
        spot_recordings, spot_venue):
    arrival = [e for _, e in read_recording(spot_recordings["BTCUSDT"], "BTCUSDT")]
    replayed = [e for e in spot_venue.events() if e.symbol == "BTCUSDT"]

    assert _late_trades(arrival) == 299
    assert _late_trades(replayed) == 0


def test_a_spot_snapshot_takes_the_time_of_the_event_before_it_in_the_file(spot_venue):
    eth = [e for e in spot_venue.events() if e.symbol == "ETHUSDT"]
    i = next(i for i, e in enumerate(eth) if isinstance(e, OrderBookSnapshot))

    assert eth[i].ts_event is None
    assert isinstance(eth[i - 1], OrderBookDelta)
    assert eth[i - 1].final_update_id == 35346513512 == eth[i].last_update_id
    assert eth[i - 1].ts_event == 1723161255408
    assert all(e.ts_event >= 1723161255408 for e in eth[i + 1:])


def test_its_snapshot_mid_stream_is_the_truth_book_at_the_last_delta(spot_venue):
    delivered = 0
    for event in spot_venue.events():
        if isinstance(event, OrderBookDelta) and event.symbol == "ETHUSDT":
            delivered += 1
            if delivered == 2000:
                snapshot = spot_venue.snapshot("ETHUSDT")
                assert snapshot.last_update_id == event.final_update_id
                assert snapshot.ts_event == event.ts_event
                truth = spot_venue.truth_book("ETHUSDT")
                assert list(snapshot.bids) == truth.levels("bid")
                assert list(snapshot.asks) == truth.levels("ask")
                break
    assert delivered == 2000


def test_before_the_stream_reaches_it_the_snapshot_is_the_recorded_one(spot_venue):
    events = spot_venue.events()
    first = next(events)

    snapshot = spot_venue.snapshot(first.symbol)

    assert snapshot.last_update_id in (35346513512, 50093239218)
    events.close()


def test_fault_injection_withholds_the_chosen_deltas(spot_venue):
    faulty = spot_venue.with_drops({"ethusdt": {10, 11, 12}})
    delivered = [e for e in faulty.events()
                 if isinstance(e, OrderBookDelta) and e.symbol == "ETHUSDT"]
    everything = [e for e in spot_venue.events()
                  if isinstance(e, OrderBookDelta) and e.symbol == "ETHUSDT"]

    assert len(delivered) == len(everything) - 3 == 6467
    assert everything[10] not in delivered and everything[13] in delivered
    assert faulty.counts["ETHUSDT"]["withheld"] == 3
    assert spot_venue.counts["ETHUSDT"]["withheld"] == 0
    assert faulty.truth_book("ETHUSDT") == spot_venue.truth_book("ETHUSDT")  # both at the end


def test_it_counts_what_it_read_per_symbol(spot_venue):
    counts = spot_venue.counts["BTCUSDT"]

    assert (counts["deltas"], counts["trades"], counts["snapshots"]) == (6495, 19904, 1)
    assert counts["malformed"] == 0
    assert spot_venue.symbols == ["ETHUSDT", "BTCUSDT"]


def test_a_recording_without_snapshot_cannot_serve_one(data_dir):
    venue = ReplayVenue({"BTCUSDT": [data_dir / "orderbook/binance_spot/btcusdt_20230405.dat.gz"]})

    with pytest.raises(MarketDataError, match="no snapshot"):
        venue.snapshot("BTCUSDT")


def test_fault_injection_refuses_indices_it_cannot_honour(spot_venue):
    with pytest.raises(ValueError, match=r"ETHUSDT: drop_deltas indices out of range 0..6469"):
        spot_venue.with_drops({"ETHUSDT": {6470}})
    with pytest.raises(ValueError, match="symbols without a recording"):
        spot_venue.with_drops({"SOLUSDT": {1}})
