"""REST endpoints of the replay venue answer in Binance's shapes."""
from __future__ import annotations

import asyncio

from apps.market.venues.replay_server import ReplayServer
from ml.market.recording import default_spot_session


async def _get(http, server, path: str):
    async with http.get(server.url + path) as resp:
        return resp.status, await resp.json(content_type=None)


async def test_depth_is_the_truth_book_as_binance_strings(server, http):
    status, body = await _get(http, server, "/api/v3/depth?symbol=ETHUSDT&limit=1000")
    assert status == 200
    assert set(body) == {"lastUpdateId", "bids", "asks"}
    assert 0 < len(body["bids"]) <= 1000 and 0 < len(body["asks"]) <= 1000
    price, qty = body["bids"][0]
    assert isinstance(price, str) and isinstance(qty, str) and len(price.split(".")[1]) == 8
    bids = [float(p) for p, _ in body["bids"]]
    asks = [float(p) for p, _ in body["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0] < asks[0]
    # the server's book can only move forward between the request and this check
    assert body["lastUpdateId"] <= server.truth_update_id("ETHUSDT")


async def test_depth_limit_cuts_levels(server, http):
    _, body = await _get(http, server, "/api/v3/depth?symbol=btcusdt&limit=5")
    assert len(body["bids"]) == 5 and len(body["asks"]) == 5


async def test_stale_snapshot_serves_the_session_start_and_is_counted(server, http):
    await asyncio.wait_for(_clock_past(server, 3_000), 10)
    _, live = await _get(http, server, "/api/v3/depth?symbol=ETHUSDT")
    server.stale_snapshot(True)
    _, stale = await _get(http, server, "/api/v3/depth?symbol=ETHUSDT")
    server.stale_snapshot(False)
    assert stale["lastUpdateId"] == 35346513512  # the recorded snapshot line
    assert stale["lastUpdateId"] < live["lastUpdateId"]
    assert server.faults["stale_snapshots"] == 1


async def test_klines_are_built_from_recorded_trades(http):
    # As fast as possible: the clock starts at the first subscription and runs to the end.
    venue = ReplayServer({"ETHUSDT": default_spot_session()["ETHUSDT"]}, speed=None)
    await venue.start()
    try:
        async with http.ws_connect(venue.ws_url + "/ws/ethusdt@trade"):
            await asyncio.wait_for(venue.finished.wait(), 20)
        status, rows = await _get(http, venue, "/api/v3/klines?symbol=ETHUSDT&interval=1m"
                                               "&limit=20")
    finally:
        await venue.stop()
    assert status == 200
    by_open = {row[0]: row for row in rows}
    # 2024-08-08 23:59 UTC, cross-checked against Binance's own 1m kline (data README section 3)
    row = by_open[1723161540000]
    assert row[4] == "2682.50000000"
    assert len(row) == 12 and row[6] == 1723161540000 + 59_999 and row[11] == "0"
    assert float(row[3]) <= float(row[1]) <= float(row[2])
    assert isinstance(row[8], int) and row[8] > 0
    open_times = [r[0] for r in rows]
    assert open_times == sorted(open_times)
    assert all(b - a == 60_000 for a, b in zip(open_times, open_times[1:], strict=False))


async def test_klines_respect_start_time_and_limit(server, http):
    await asyncio.wait_for(_clock_past(server, 5_000), 10)
    _, all_rows = await _get(http, server, "/api/v3/klines?symbol=ETHUSDT&interval=1s")
    start = all_rows[1][0]
    _, rows = await _get(http, server, f"/api/v3/klines?symbol=ETHUSDT&interval=1s"
                                       f"&startTime={start}&limit=2")
    assert [r[0] for r in rows] == [start, start + 1000]


async def test_exchange_info_time_and_ping(server, http):
    status, info = await _get(http, server, "/api/v3/exchangeInfo")
    assert status == 200
    symbols = {s["symbol"]: s for s in info["symbols"]}
    assert {"ETHUSDT", "BTCUSDT"} <= set(symbols)
    assert any(f["filterType"] == "PRICE_FILTER" for f in symbols["ETHUSDT"]["filters"])
    _, one = await _get(http, server, "/api/v3/exchangeInfo?symbol=ETHUSDT")
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
    _, clock = await _get(http, server, "/api/v3/time")
    assert 1723161255000 <= clock["serverTime"] <= 1723161906000  # the session's exchange time
    assert await _get(http, server, "/api/v3/ping") == (200, {})


async def test_it_rejects_bad_requests_like_binance(server, http):
    assert await _get(http, server, "/api/v3/depth?symbol=DOGEUSDT") == \
        (400, {"code": -1121, "msg": "Invalid symbol."})
    assert await _get(http, server, "/api/v3/klines?symbol=NOPE&interval=1m") == \
        (400, {"code": -1121, "msg": "Invalid symbol."})
    status, body = await _get(http, server, "/api/v3/depth")
    assert status == 400 and body["code"] == -1102
    status, body = await _get(http, server, "/api/v3/klines?symbol=ETHUSDT&interval=7m")
    assert (status, body["code"]) == (400, -1120)
    status, body = await _get(http, server, "/api/v3/depth?symbol=ETHUSDT&limit=abc")
    assert (status, body["code"]) == (400, -1100)
    assert server.stats["rest_errors"] == 5


async def _clock_past(server, ms: int) -> None:
    start = server.clock_ms()
    while server.clock_ms() < start + ms:
        await asyncio.sleep(0.02)
