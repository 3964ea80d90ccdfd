"""Rule "snapshot" (whole books from a venue client that keeps the book itself), on the recorded
Bybit v5 spot order book: every snapshot replaces the book, stale ones are ignored, crossed ones refused."""
from __future__ import annotations

import io
from collections import Counter

import orjson
import pytest
import zstandard

from ml.market.events import OrderBookDelta, OrderBookSnapshot, Trade
from ml.market.gridbook import GridBook
from ml.market.orderbook import OrderBook
from ml.market.recording import default_data_dir
from ml.market.session import InstrumentSpec, MarketSession
from ml.market.sync import BookSynchronizer
from ml.market.venues import bybit

SPOT_CONN = "BYBIT.ws.3"  # the recording's spot connection (wss://stream.bybit.com/v5/public/spot)


@pytest.fixture(scope="module")
def bybit_books() -> list[OrderBookSnapshot]:
    """ETHUSDT spot: the whole book after every recorded snapshot / delta (200 levels a side at most)."""
    path = default_data_dir() / "ws_samples" / "cryptofeed_BYBIT.jsonl.zst"
    book, out = OrderBook(), []
    with path.open("rb") as fh:
        for line in io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(fh), encoding="utf-8"):
            record = orjson.loads(line)
            if record["t"] != "recv" or record["conn"] != SPOT_CONN or "orderbook.200.ETHUSDT" not in record["data"]:
                continue
            (event,) = bybit.parse_message(record["data"])
            if type(event) is OrderBookSnapshot:
                book.apply_snapshot(event)
                u = event.last_update_id
            else:
                book.apply_levels(event.bids, event.asks)
                u = event.final_update_id
            out.append(OrderBookSnapshot("ETHUSDT", u, tuple(book.levels("bid")), tuple(book.levels("ask")),
                                         ts_event=event.ts_event))
    assert len(out) == 250
    return out


def test_every_snapshot_replaces_the_book(bybit_books):
    sync = BookSynchronizer("ETHUSDT", "snapshot", book=GridBook(0.01))
    for snap in bybit_books:
        sync.apply_snapshot(snap)
        assert sync.synced and sync.last_update_id == snap.last_update_id
    last = bybit_books[-1]
    assert sync.book.levels("bid") == list(last.bids) and sync.book.levels("ask") == list(last.asks)
    assert sync.stats.snapshots == 250 and sync.stats.stale_snapshots == 0 and sync.stats.rejected == 0


def test_a_snapshot_not_newer_than_the_book_is_ignored(bybit_books):
    sync = BookSynchronizer("ETHUSDT", "snapshot", book=OrderBook())
    newer, older = bybit_books[10], bybit_books[5]
    sync.apply_snapshot(newer)
    sync.apply_snapshot(older)
    sync.apply_snapshot(newer)  # the same version again
    assert sync.last_update_id == newer.last_update_id and sync.stats.stale_snapshots == 2
    assert sync.book.levels("bid") == list(newer.bids)


def test_a_crossed_snapshot_is_rejected_and_the_next_good_one_resyncs(bybit_books):
    sync = BookSynchronizer("ETHUSDT", "snapshot", book=GridBook(0.01))
    good, then = bybit_books[0], bybit_books[1]
    sync.apply_snapshot(good)
    best_ask = good.asks[0][0]
    crossed = OrderBookSnapshot("ETHUSDT", good.last_update_id + 1, ((best_ask + 1.0, 1.0), *good.bids), good.asks)
    sync.apply_snapshot(crossed)
    assert not sync.synced and sync.stats.rejected == 1
    assert then.last_update_id == crossed.last_update_id  # Bybit u: +1 per message
    sync.apply_snapshot(then)  # same id as the refused one: stale
    assert sync.stats.stale_snapshots == 1 and not sync.synced
    later = bybit_books[2]
    sync.apply_snapshot(later)
    assert sync.synced and sync.book.levels("ask") == list(later.asks)


def test_it_refuses_deltas_and_unknown_rules():
    sync = BookSynchronizer("ETHUSDT", "snapshot")
    with pytest.raises(ValueError, match="snapshots only"):
        sync.apply_delta(OrderBookDelta("ETHUSDT", 1, 1, 1, None, ((1.0, 1.0),), ()))
    with pytest.raises(ValueError, match="snapshot"):
        BookSynchronizer("ETHUSDT", "bybit")


class _SnapshotVenue:
    """A venue that yields whole books and trades (what ``CcxtProVenue`` does), for MarketSession."""

    def __init__(self, events: list) -> None:
        self._events = events
        self.counts: dict[str, Counter[str]] = {"ETHUSDT": Counter()}

    def events(self):
        yield from self._events

    def snapshot(self, symbol: str) -> OrderBookSnapshot:
        raise AssertionError("a snapshot venue is never asked for a resync snapshot")


def test_a_session_on_rule_snapshot_builds_frames_from_whole_books(bybit_books):
    trades = [Trade("ETHUSDT", b.ts_event, k, b.bids[0][0], 0.1, False) for k, b in enumerate(bybit_books[::25])]
    events = sorted([*bybit_books, *trades], key=lambda e: e.ts_event)
    session = MarketSession(_SnapshotVenue(events), [InstrumentSpec("ETHUSDT", 1.0, sync_rule="snapshot")])
    results = list(session.seconds())
    assert len(results) >= 40 and all("ETHUSDT" in r.frames for r in results)
    last_second = results[-1].ts
    book = max((b for b in bybit_books if b.ts_event < last_second + 1000), key=lambda b: b.ts_event)
    assert results[-1].frames["ETHUSDT"].best_bid == book.bids[0][0]
    assert session.stats["ETHUSDT"]["snapshots"] == len(bybit_books)  # the last second's too (not emitted)
