"""ccxt REST client (snapshots, candles) against the replay venue's injected HTTP errors."""
from __future__ import annotations

import random
import time

import pytest

from apps.market.venues.ccxt_rest import Backoff, BinanceRest, VenuePermanentError, VenueTemporaryError
from tests.apps.market.venues.threaded import ThreadedReplay


@pytest.fixture(scope="module")
def replay():
    venue = ThreadedReplay(speed=20)
    try:
        yield venue
    finally:
        venue.stop()


def rest(replay: ThreadedReplay, **kwargs) -> BinanceRest:
    kwargs.setdefault("backoff", Backoff(0.01, 0.05))
    return BinanceRest(rest_url=replay.server.url, rng=random.Random(3), **kwargs)


def test_a_snapshot_carries_the_venue_last_update_id(replay):
    snap = rest(replay).depth("ETHUSDT", 100)
    assert snap.symbol == "ETHUSDT" and len(snap.bids) == len(snap.asks) == 100
    assert snap.last_update_id <= replay.call(lambda: replay.server.truth_update_id("ETHUSDT"))
    assert snap.bids[0][0] < snap.asks[0][0]


@pytest.mark.parametrize("status", [429, 418])
def test_a_rate_limit_answer_is_retried_after_retry_after(replay, status):
    client = rest(replay)
    replay.call(lambda: replay.server.http_error(status, retry_after=1, path="/api/v3/depth"))
    started = time.monotonic()
    snap = client.depth("BTCUSDT", 5)
    assert time.monotonic() - started >= 1.0  # Retry-After respected, not the 10 ms backoff
    assert len(snap.bids) == 5
    assert client.counts[f"http_{status}"] == 1 and client.counts["retries"] == 1 and client.counts["requests"] == 2
    assert client.waits == [1.0]


def test_server_errors_and_timeouts_are_retried_with_backoff(replay):
    client = rest(replay, timeout_s=0.3)
    replay.call(lambda: replay.server.http_error(503, n=2, path="/api/v3/klines"))
    replay.call(lambda: replay.server.http_error(0, delay=1.0, path="/api/v3/klines"))  # held past the timeout
    candles = client.candles("ETHUSDT", "1m", limit=3)
    assert len(candles) == 3
    assert client.counts["http_5xx"] == 2 and client.counts["timeouts"] == 1 and client.counts["retries"] == 3
    assert all(0 <= w <= min(0.05, 0.01 * 2 ** k) for k, w in enumerate(client.waits))


def test_temporary_errors_give_up_after_max_attempts(replay):
    client = rest(replay, max_attempts=3)
    replay.call(lambda: replay.server.http_error(502, n=3, path="/api/v3/depth"))
    with pytest.raises(VenueTemporaryError) as info:
        client.depth("ETHUSDT", 5)
    assert info.value.status == 502 and client.counts["requests"] == 3


def test_a_retry_after_longer_than_allowed_is_raised_at_once(replay):
    client = rest(replay, max_retry_after_s=5)
    replay.call(lambda: replay.server.http_error(418, retry_after=600, path="/api/v3/depth"))
    with pytest.raises(VenueTemporaryError) as info:
        client.depth("ETHUSDT", 5)
    assert info.value.retry_after_s == 600 and client.counts["requests"] == 1


def test_a_bad_request_is_permanent_and_not_retried(replay):
    client = rest(replay)
    with pytest.raises(VenuePermanentError, match="Invalid symbol"):
        client.depth("DOGEUSDT", 5)
    with pytest.raises(VenuePermanentError):
        client.candles("NOPEUSDT", "1m")
    assert client.counts["requests"] == 2 and client.counts["permanent_errors"] == 2 and client.counts["retries"] == 0


def test_klines_before_the_recording_come_from_the_history_files(replay):
    client = rest(replay)
    before = 1723161000000  # 2024-08-08 23:50, the session starts at 23:54:15
    for timeframe, period in (("1m", 60_000), ("1h", 3_600_000), ("1d", 86_400_000)):
        candles = client.candles("ETHUSDT", timeframe, end_ms=before, limit=5)
        assert len(candles) == 5 and candles[-1].open_time <= before
        assert [b.open_time - a.open_time for a, b in zip(candles, candles[1:], strict=False)] == [period] * 4
    row = client.candles("ETHUSDT", "1m", start_ms=1723160940000, limit=1)[0]  # 23:49 in the ftrade 1m file
    assert row.open_time == 1723160940000 and row.trade_count == 0 and row.quote_volume == 0.0


def test_a_period_that_began_before_the_recording_is_served_only_once_closed(replay):
    client = rest(replay)
    clock = replay.call(replay.server.clock_ms)
    rows = client.candles("ETHUSDT", "1h", start_ms=1723158000000, limit=2)  # the 23:00 hour
    if clock < 1723161600000:
        assert all(r.open_time != 1723158000000 for r in rows)  # still open: its start was not recorded
    else:
        assert rows[0].close == 2682.50  # data README: the 23:00 hour closes at 2682.50
