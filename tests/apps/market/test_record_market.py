"""record_market against the replay venue: the recorder's files replay to the same 1 s candles."""
from __future__ import annotations

import asyncio
import gzip
import io
import time

import orjson
import pytest
from django.core.management import call_command

from apps.market.management.commands.record_market import record
from apps.market.venues.binance_ws import StreamConfig
from apps.market.venues.ccxt_rest import Backoff
from ml.market.candles import second_candles
from ml.market.events import Trade
from ml.market.recording import default_spot_session, read_recording
from ml.market.replay import ReplayVenue
from ml.market.session import InstrumentSpec, MarketSession
from tests.apps.market.venues.threaded import ThreadedReplay

SYMBOLS = ["ETHUSDT", "BTCUSDT"]
CONFIG = StreamConfig(backoff=Backoff(0.05, 0.5), idle_timeout_s=5.0)
DAY_NS = 86_400 * 10**9


@pytest.fixture
def replay():
    venue = ThreadedReplay(speed=10)
    try:
        yield venue
    finally:
        venue.stop()


def test_the_recording_replays_to_the_candles_of_the_original(replay, tmp_path):
    writer = asyncio.run(record(venue="binance", symbols=SYMBOLS, out=tmp_path, duration_s=3.0,
                                endpoints=replay.endpoints, config=CONFIG))
    original_lines = {line.partition(" ")[2] for s in SYMBOLS for p in default_spot_session()[s]
                      for line in gzip.open(p, "rt").read().splitlines()}
    for symbol in SYMBOLS:
        files = writer.files(symbol)
        assert len(files) == 1 and files[0].name.startswith(symbol.lower() + "_")
        lines = gzip.open(files[0], "rt").read().splitlines()
        head, _, first = lines[0].partition(" ")
        assert int(head) > 10**18 and "lastUpdateId" in orjson.loads(first)  # the REST snapshot first
        assert all(line.partition(" ")[2] in original_lines for line in lines[1:])  # frames exactly as sent
        assert writer.lines[symbol] == len(lines) > 50
    venue = ReplayVenue({s: writer.files(s) for s in SYMBOLS})
    session = MarketSession(venue, [InstrumentSpec("ETHUSDT", 1.0), InstrumentSpec("BTCUSDT", 10.0)])
    results = list(session.seconds())[1:]  # the first second began before the recorder listened
    assert len(results) >= 20
    for symbol in SYMBOLS:
        expected = second_candles(replay.server.recorded_trades(symbol), symbol)
        candles = [r.candles[symbol] for r in results if symbol in r.candles]
        assert len(candles) >= 20
        assert candles == [expected[c.open_time] for c in candles]
        assert session.stats[symbol]["gaps"] == 0 and all(symbol in r.frames for r in results)


def test_files_rotate_at_utc_midnight_and_read_back_as_one_stream(replay, tmp_path):
    now = time.time_ns()
    offset = (now // DAY_NS + 1) * DAY_NS - now - 1_500_000_000  # midnight 1.5 s into the recording
    writer = asyncio.run(record(venue="binance", symbols=["ETHUSDT"], out=tmp_path, duration_s=3.0,
                                endpoints=replay.endpoints, config=CONFIG, clock_ns=lambda: time.time_ns() + offset))
    first, second = writer.files("ETHUSDT")
    midnight = (now + offset) // DAY_NS * DAY_NS + DAY_NS
    assert first.name == f"ethusdt_{time.strftime('%Y%m%d', time.gmtime((midnight - 1) // 10**9))}.gz"
    assert second.name == f"ethusdt_{time.strftime('%Y%m%d', time.gmtime(midnight // 10**9))}.gz"
    first_ts = [int(line.split(" ", 1)[0]) for line in gzip.open(first, "rt")]
    second_ts = [int(line.split(" ", 1)[0]) for line in gzip.open(second, "rt")]
    assert max(first_ts) < midnight <= min(second_ts)
    reader = read_recording([first, second], "ETHUSDT")
    trade_ids = [e.trade_id for _, e in reader if type(e) is Trade]
    assert reader.counts["snapshots"] == 1 and reader.counts["malformed"] == 0
    assert trade_ids == list(range(trade_ids[0], trade_ids[0] + len(trade_ids)))  # nothing lost at the switch


def test_the_command_records_from_the_configured_endpoints(replay, tmp_path, settings):
    settings.GOGO_BINANCE_REST_URL, settings.GOGO_BINANCE_WS_URL = replay.server.url, replay.server.ws_url
    out = io.StringIO()
    call_command("record_market", "--symbols", "ethusdt", "--out", str(tmp_path), "--duration", "1.5", stdout=out)
    assert out.getvalue().startswith("ETHUSDT: ")
    (path,) = tmp_path.iterdir()
    assert path.name.startswith("ethusdt_") and path.stat().st_size > 0
