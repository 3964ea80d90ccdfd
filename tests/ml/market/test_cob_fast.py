"""The C pipeline (raw messages -> frames + MAs) against MarketSession, the peers and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from bench.cob import check_equal, load_peer
from ml.market.binance import parse_message
from ml.market.cob import BucketImbalanceMA
from ml.market.cob_fast import FastCobEngine
from ml.market.events import CobFrame, OrderBookSnapshot
from ml.market.orderbook import OrderBook
from ml.market.recording import read_raw_depth

WIDTHS = {"ETHUSDT": 1.0, "BTCUSDT": 10.0}


@pytest.fixture(scope="module")
def raw(spot_recordings) -> dict[str, tuple[bytes, list[bytes]]]:
    return {s: read_raw_depth(paths) for s, paths in spot_recordings.items()}


def _run(raw, symbol: str, mode: str = "session", **kwargs):
    snap, msgs = raw[symbol]
    engine = FastCobEngine(symbol, WIDTHS[symbol], **kwargs)
    engine.load_snapshot(snap)
    return engine, engine.run(msgs, mode=mode)


def test_session_clock_frames_equal_the_market_session_frames(raw, spot_run):
    for symbol in WIDTHS:
        engine, batch = _run(raw, symbol)
        mine = {int(t): k for k, t in enumerate(batch.ts)}
        compared = 0
        for frame in spot_run.frames[symbol]:
            k = mine[frame.ts]
            assert np.array_equal(batch.bid_usd[k], frame.bid_usd)  # bit for bit
            assert np.array_equal(batch.ask_usd[k], frame.ask_usd)
            assert (batch.mid[k], batch.first_bucket_price[k]) == (frame.mid, frame.first_bucket_price)
            np.testing.assert_allclose(batch.imbalance[k], frame.imbalance, rtol=0, atol=1e-12)
            assert batch.imbalance_5[k] == pytest.approx(frame.imbalance_5, abs=1e-12)
            for w, key in enumerate(("1s", "5s", "15s", "60s")):
                assert batch.imbalance_ma[k, w] == pytest.approx(frame.imbalance_ma[key], abs=1e-12)
                np.testing.assert_allclose(batch.bucket_imbalance_ma[k, w], frame.bucket_imbalance_ma[key],
                                           rtol=0, atol=1e-12)
            compared += 1
        assert compared == len(batch) == 650
        assert engine.stats["level_updates"] == spot_run.stats[symbol]["level_updates"]
        assert (engine.stats["gaps"], engine.stats["dropped"]) == (0, 2)
        assert engine.best_bid_ask() == spot_run.end_books[symbol].levels("bid", 1)[0][:1] + \
            spot_run.end_books[symbol].levels("ask", 1)[0][:1]


def test_peer_clock_frames_equal_both_peers_at_every_second(raw, data_dir):
    peer = load_peer(data_dir)
    peer_data = {s: peer.load(s) for s in peer.RUNS}
    ours = {s: _run(raw, s, mode="peer")[1] for s in peer.RUNS}

    checked = check_equal(peer, peer_data, ours)

    assert checked == {"cryptofeed order-book": (1300, 0.0), "ccxt.pro": (1300, 0.0)}


def test_batch_frames_convert_to_cob_frames(raw, spot_run):
    _, batch = _run(raw, "ETHUSDT")
    frame = batch.frame(100)
    want = spot_run.frames["ETHUSDT"][100]
    assert isinstance(frame, CobFrame) and frame.ts == want.ts
    assert frame.imbalance_ma == pytest.approx(want.imbalance_ma, abs=1e-12)
    assert set(frame.bucket_imbalance_ma) == {"1s", "5s", "15s", "60s"}


def _truth_snapshot(snap: bytes, msgs: list[bytes], upto: int) -> OrderBookSnapshot:
    """The venue's book after messages[:upto + 1], as a REST snapshot would give it."""
    book, first = OrderBook(), parse_message(snap, symbol="ETHUSDT")
    book.apply_snapshot(first)
    last = first.last_update_id
    for m in msgs[:upto + 1]:
        delta = parse_message(m)
        if delta.final_update_id > last:
            book.apply_levels(delta.bids, delta.asks)
            last = delta.final_update_id
    return OrderBookSnapshot("ETHUSDT", last, tuple(book.levels("bid")), tuple(book.levels("ask")))


def test_a_missing_message_is_a_counted_gap_resynced_from_the_snapshot_source(raw):
    snap, msgs = raw["ETHUSDT"]
    resync = _truth_snapshot(snap, msgs, 3000)
    engine = FastCobEngine("ETHUSDT", 1.0, snapshot_source=lambda symbol: resync)
    engine.load_snapshot(snap)

    batch = engine.run(msgs[:3000] + msgs[3001:])

    _, full = _run(raw, "ETHUSDT")
    assert (engine.stats["gaps"], engine.resyncs) == (1, 1)
    assert len(batch) == len(full) == 650
    assert np.array_equal(batch.bid_usd[-1], full.bid_usd[-1])


def test_bad_messages_are_counted_and_never_applied(raw):
    snap, msgs = raw["ETHUSDT"]
    good = msgs[10]
    nan_price = good.replace(b'"b":[["', b'"b":[["NaN","1.0"],["', 1)
    negative = good.replace(b'"a":[["', b'"a":[["-5.00","1.0"],["', 1)
    engine = FastCobEngine("ETHUSDT", 1.0)  # no snapshot source: a gap stops the run
    engine.load_snapshot(snap)

    engine.run(msgs[:10] + [b'{"stream":"ethusdt@depth@100ms","data":{"e":', nan_price, negative])

    stats = engine.stats
    assert (stats["malformed"], stats["rejected"], stats["applied"]) == (1, 2, 8)
    assert engine.synced  # nothing of the bad messages touched the book
    engine.run([msgs[11]])  # U != previous u + 1: message 10 was never applied
    assert stats["gaps"] == 0 and engine.stats["gaps"] == 1 and not engine.synced


def test_a_stale_snapshot_source_stops_the_run_instead_of_looping(raw):
    snap, msgs = raw["ETHUSDT"]
    engine = FastCobEngine("ETHUSDT", 1.0, snapshot_source=lambda symbol: snap)  # always the old one
    engine.load_snapshot(snap)

    batch = engine.run(msgs[:3000] + msgs[3001:])

    assert engine.resyncs == 4 and not engine.synced
    assert len(batch) < 650


def test_invalid_snapshots_and_arguments_are_refused():
    engine = FastCobEngine("ETHUSDT", 1.0)
    with pytest.raises(Exception, match="invalid snapshot"):
        engine.load_snapshot(b'{"lastUpdateId":1,"bids":[["-1","2"]],"asks":[]}')
    with pytest.raises(ValueError, match="bucket_width"):
        FastCobEngine("ETHUSDT", 0.0)
    with pytest.raises(ValueError, match="mode"):
        engine.run([], mode="later")


def _frame(first_bucket_price: float, imbalance: list[float]) -> CobFrame:
    n = len(imbalance)
    zeros = np.zeros(n)
    return CobFrame("X", 0, 0.0, 0.0, 0.0, 1.0, n // 2, first_bucket_price, zeros, zeros, np.array(imbalance), 0.0)


def test_bucket_moving_averages_follow_the_price_bucket_when_the_grid_shifts():
    ma = BucketImbalanceMA(windows=(1, 2, 3))
    ma.update(_frame(100.0, [0.1, 0.2, 0.3]))  # buckets [100,101) [101,102) [102,103)
    ma.update(_frame(101.0, [0.5, 0.6, 0.7]))  # mid moved up one bucket: [101..104)
    out = ma.update(_frame(100.0, [0.0, 0.4, 0.8])).bucket_imbalance_ma  # back down

    assert out["1s"].tolist() == [0.0, 0.4, 0.8]
    # [100,101): this frame 0.0; last frame had no such bucket -> mean of 1 value
    # [101,102): 0.4 now, 0.5 a second ago; [102,103): 0.8 and 0.6
    assert out["2s"] == pytest.approx([0.0, 0.45, 0.7])
    # 3 s: [100,101) also 0.1 two seconds ago; [101,102) 0.2; [102,103) 0.3
    assert out["3s"] == pytest.approx([0.05, (0.4 + 0.5 + 0.2) / 3, (0.8 + 0.6 + 0.3) / 3])


def test_every_second_of_a_quiet_spell_gets_a_frame_of_the_unchanged_book(raw):
    snap, msgs = raw["ETHUSDT"]
    engine = FastCobEngine("ETHUSDT", 1.0)
    engine.load_snapshot(snap)
    first = engine.run(msgs[:12])
    e = int(msgs[12].split(b'"E":')[1].split(b",")[0])
    later = msgs[12].replace(b'"E":%d' % e, b'"E":%d' % (e + 2_000_000), 1)  # 2,000 s later

    batch = engine.run([later])

    assert len(batch) >= 1999  # more than the first output buffer holds: it grows
    assert np.all(np.diff(batch.ts) == 1000)
    assert np.array_equal(batch.bid_usd[0], batch.bid_usd[-1])  # nothing changed meanwhile
    assert batch.ts[0] == first.ts[-1] + 1000
