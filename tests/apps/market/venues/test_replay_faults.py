"""Our own path (aiohttp websocket + parser + BookSynchronizer) against injected faults.

``BookSynchronizer.snapshot_source`` is synchronous; a blocking REST call to a server on the same
event loop would deadlock, so the client fetches the REST snapshot with aiohttp and hands it over
through ``apply_snapshot`` whenever the synchronizer reports it is out of sync (the documented path
for a synchronizer without a source).
"""
from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable

import aiohttp
import orjson
import pytest

from apps.market.venues.replay_server import main
from ml.market.binance import parse_message
from ml.market.events import OrderBookDelta
from ml.market.recording import default_spot_session
from ml.market.sync import BookSynchronizer

SYMBOL = "ETHUSDT"
WAIT = 15  # s, bound on every wait


class OwnClient:
    """Diff-depth stream + REST snapshots feeding a BookSynchronizer."""

    def __init__(self, server, http: aiohttp.ClientSession) -> None:
        self.server, self.http = server, http
        self.sync = BookSynchronizer(SYMBOL)
        self.snapshots_fetched = 0
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self) -> None:
        stream = f"{SYMBOL.lower()}@depth@100ms"
        self.ws = await self.http.ws_connect(f"{self.server.ws_url}/stream?streams={stream}")
        await self.resync()

    async def resync(self) -> None:
        async with self.http.get(f"{self.server.url}/api/v3/depth",
                                 params={"symbol": SYMBOL, "limit": "5000"}) as resp:
            resp.raise_for_status()
            body = await resp.read()
        self.snapshots_fetched += 1
        self.sync.apply_snapshot(parse_message(body, symbol=SYMBOL))

    async def step(self) -> None:
        msg = await self.ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"stream ended: {msg.type!r} {self.ws.close_code}")
        event = parse_message(msg.data)
        if isinstance(event, OrderBookDelta):
            self.sync.apply_delta(event)
            if not self.sync.synced:
                await self.resync()

    def in_step_with_venue(self) -> bool:
        return self.sync.synced and \
            self.sync.last_update_id == self.server.truth_update_id(SYMBOL)

    async def run_until(self, done: Callable[[], bool]) -> None:
        """Read until ``done()``; returns in the same task, before the venue can move on."""
        try:
            async with asyncio.timeout(WAIT):  # not wait_for: it resumes us one loop turn later
                while not done():
                    await self.step()
        except TimeoutError:
            raise AssertionError(
                f"timed out: sync {self.sync.stats} synced={self.sync.synced} "
                f"last={self.sync.last_update_id} truth={self.server.truth_update_id(SYMBOL)} "
                f"snapshots={self.snapshots_fetched} faults={dict(self.server.faults)} "
                f"stats={dict(self.server.stats)}") from None

    async def assert_equals_truth(self) -> None:
        """Freeze the venue, read what is in flight, compare the books, resume."""
        self.server.pause()  # else, on a loaded machine, the venue can stay a diff ahead
        try:
            if not self.sync.synced:  # waiting for a delta to trigger the resync would hang
                await self.resync()
            await self.run_until(self.in_step_with_venue)
            assert self.sync.book == self.server.truth_book(SYMBOL)
            assert not self.sync.book.is_crossed()
        finally:
            self.server.resume()


@pytest.fixture
async def client(server, http):
    own = OwnClient(server, http)
    await asyncio.wait_for(own.connect(), WAIT)
    # past the diffs recorded before the session's snapshot: dropping one of those is no gap
    await own.run_until(lambda: own.sync.stats.deltas_applied > 0)
    try:
        yield own
    finally:
        if own.ws is not None:
            await own.ws.close()


async def test_it_stays_in_sync_without_faults(client):
    await client.assert_equals_truth()
    assert client.sync.stats.gaps == 0


async def test_a_dropped_diff_is_detected_and_resynced(server, client):
    await client.assert_equals_truth()
    server.drop_next(SYMBOL, 1)
    await client.run_until(lambda: client.sync.stats.gaps > 0)
    await client.assert_equals_truth()
    assert server.faults["diffs_dropped"] == 1
    assert client.sync.stats.gaps == 1
    assert client.sync.stats.resyncs == 1


async def test_a_duplicated_diff_is_ignored(server, client):
    await client.assert_equals_truth()
    dropped_before = client.sync.stats.deltas_dropped
    server.duplicate_next(SYMBOL, 2)
    await client.run_until(lambda: server.faults["diffs_duplicated"] == 2
                           and client.sync.stats.deltas_dropped >= dropped_before + 2)
    await client.assert_equals_truth()
    assert client.sync.stats.gaps == 0  # u <= last: dropped, harmless


async def test_reordered_diffs_are_detected_and_resynced(server, client):
    await client.assert_equals_truth()
    server.reorder_next(SYMBOL)
    await client.run_until(lambda: client.sync.stats.gaps > 0)
    await client.assert_equals_truth()
    assert server.faults["diffs_reordered"] == 1
    assert client.sync.stats.gaps == 1


async def test_a_stale_snapshot_fails_the_sync_until_a_fresh_one(server, client):
    await client.assert_equals_truth()
    server.stale_snapshot(True)
    server.drop_next(SYMBOL, 1)
    # the resync loads the session's first snapshot: the next diff does not continue it
    await client.run_until(lambda: client.sync.stats.gaps >= 2)
    assert server.faults["stale_snapshots"] >= 1
    server.stale_snapshot(False)
    await client.assert_equals_truth()


async def test_a_delay_holds_frames_then_delivers_them_in_order(server, client):
    await client.assert_equals_truth()
    loop = asyncio.get_running_loop()
    server.delay(0.5)
    # frames already on the wire still arrive; then nothing until the hold ends
    async with asyncio.timeout(5):
        while True:
            before = loop.time()
            await client.step()
            if loop.time() - before >= 0.3:
                break
    await client.assert_equals_truth()
    assert client.sync.stats.gaps == 0 and server.faults["delays"] == 1


async def test_drop_connection_closes_the_client_socket(server, client):
    await client.assert_equals_truth()
    assert server.drop_connection() == 1
    with pytest.raises(ConnectionError):
        await client.run_until(lambda: False)
    assert server.faults["connections_dropped"] == 1
    await _until(lambda: server.clients == 0)


async def test_shutdown_message_closes_with_1001(server, client):
    await client.assert_equals_truth()
    assert await server.shutdown_message() == 1
    with pytest.raises(ConnectionError):
        await client.run_until(lambda: False)
    assert client.ws.close_code == 1001


async def test_subscribe_method_on_a_raw_stream(server, http):
    async with http.ws_connect(f"{server.ws_url}/ws") as ws:
        await ws.send_json({"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": 7})
        assert await asyncio.wait_for(ws.receive_json(), WAIT) == {"result": None, "id": 7}
        trade = await asyncio.wait_for(ws.receive_json(), WAIT)
        assert trade["e"] == "trade" and trade["s"] == SYMBOL
        await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 8})
        while (reply := await asyncio.wait_for(ws.receive_json(), WAIT)).get("id") != 8:
            pass
        assert reply["result"] == ["ethusdt@trade"]


async def _until(done: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not done():
            await asyncio.sleep(0.01)


async def test_combined_frames_are_sent_exactly_as_recorded(server, http):
    paths = default_spot_session()[SYMBOL]
    recorded = {line.partition(" ")[2] for path in paths
                for line in gzip.open(path, "rt").read().splitlines()}
    streams = "ethusdt@trade/ethusdt@bookTicker/ethusdt@depth@100ms"
    seen: set[str] = set()
    async with http.ws_connect(f"{server.ws_url}/stream?streams={streams}") as ws:
        async with asyncio.timeout(WAIT):
            while len(seen) < 3:
                text = (await ws.receive()).data
                assert text in recorded
                seen.add(orjson.loads(text)["stream"])
    assert seen == set(streams.split("/"))


def test_the_cli_rejects_a_symbol_without_recording():
    with pytest.raises(SystemExit, match="DOGEUSDT"):
        main(["--symbols", "DOGEUSDT", "--port", "0"])
