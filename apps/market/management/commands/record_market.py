"""``python manage.py record_market --venue binance --symbols ETHUSDT,BTCUSDT --out DIR [--duration S]``

Records a venue's combined stream in the format of ``shared/data/orderbook/binance_spot/*.gz`` (data
README section 1): per symbol and UTC day one gzip file of ``<receive ns> <json>`` lines, first the REST
depth snapshot (written after the stream is open, as "How to manage a local order book correctly"
orders it; again after every reconnect), then every combined-stream message exactly as received.
Endpoints come from the settings (``GOGO_BINANCE_WS_URL`` / ``GOGO_BINANCE_REST_URL``: the replay venue
on loopback by default). The files replay through ``ml.market.replay.ReplayVenue`` and the replay venue.
"""
from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from django.core.management.base import BaseCommand, CommandError

from apps.market.venues.binance_ws import BinanceStream, StreamConfig
from apps.market.venues.ccxt_rest import VENUES, BinanceRest, VenueError
from apps.market.venues.live import VenueEndpoints, stream_config_from_settings
from ml.market.recording import RecordingWriter

logger = logging.getLogger(__name__)

STREAMS = {"depth": "depth@100ms", "trade": "trade", "bookTicker": "bookTicker"}
_STREAM = re.compile(r'^\{"stream":"([a-z0-9]+)@')


async def record(*, venue: str, symbols: list[str], out: Path, duration_s: float | None,
                 endpoints: VenueEndpoints, streams: tuple[str, ...] = ("depth", "trade"), config: StreamConfig | None = None,
                 clock_ns: Callable[[], int] = time.time_ns, snapshot_limit: int = 1000) -> RecordingWriter:
    """Record until ``duration_s`` (wall seconds; None: until cancelled). Returns the closed writer.

    Frames naming no recorded symbol are skipped (counted in the log). Raises VenuePermanentError
    for a refused websocket or snapshot request.
    """
    writer = RecordingWriter(out, symbols)
    rest = BinanceRest(venue=venue, rest_url=endpoints.rest_url)
    names = [f"{s.lower()}@{STREAMS[k]}" for s in symbols for k in streams]
    url = f"{endpoints.ws_url.rstrip('/')}/stream?streams={'/'.join(names)}"
    buffered: list[tuple[str, int, str]] | None = []  # frames held until the snapshots are written
    skipped = 0

    def on_frame(text: str, _ts_init_ms: int) -> None:
        nonlocal skipped
        match = _STREAM.match(text)
        symbol = match.group(1).upper() if match else None
        if symbol not in writer.symbols:
            skipped += 1
            return
        if buffered is not None:
            buffered.append((symbol, clock_ns(), text))
        else:
            writer.write(symbol, clock_ns(), text)

    def on_connect() -> None:
        nonlocal buffered
        buffered = buffered if buffered is not None else []
        asyncio.get_running_loop().create_task(snapshots())

    async def snapshots() -> None:
        nonlocal buffered
        for symbol in writer.symbols:
            body = await asyncio.to_thread(rest.depth_raw, symbol, snapshot_limit)
            writer.write(symbol, clock_ns(), orjson.dumps(body))
        pending, buffered = buffered or [], None
        for symbol, ts, text in pending:
            writer.write(symbol, ts, text)

    stream = BinanceStream(url, config=config or stream_config_from_settings(), rng=random.Random(), on_frame=on_frame,
                           on_connect=on_connect, on_disconnect=lambda cause, error: logger.warning(
                               "recorder: connection ended (%s) %s", cause, error))
    task = asyncio.create_task(stream.run())
    try:
        done, _ = await asyncio.wait([task], timeout=duration_s)
        if task in done:
            task.result()  # a permanent error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        writer.close()
    if skipped:
        logger.warning("recorder: %d frames of other symbols skipped", skipped)
    return writer


class Command(BaseCommand):
    help = "Record a venue's diff-depth and trade streams (+ REST snapshots) to gzip files, one per symbol and UTC day."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--venue", default="binance", choices=VENUES)
        parser.add_argument("--symbols", default="ETHUSDT,BTCUSDT", help="comma separated, e.g. ETHUSDT,BTCUSDT")
        parser.add_argument("--out", required=True, type=Path, help="directory of the gzip files")
        parser.add_argument("--duration", type=float, default=None, help="seconds to record (default: until Ctrl-C)")
        parser.add_argument("--streams", default="depth,trade", help="any of depth, trade, bookTicker")

    def handle(self, *args, **options) -> None:
        symbols = [s.strip().upper() for s in options["symbols"].split(",") if s.strip()]
        streams = tuple(s.strip() for s in options["streams"].split(",") if s.strip())
        unknown = sorted(set(streams) - set(STREAMS))
        if not symbols or unknown:
            raise CommandError(f"--symbols must name at least one symbol; unknown --streams {unknown}")
        endpoints = VenueEndpoints.from_settings(options["venue"])
        try:
            writer = asyncio.run(record(venue=options["venue"], symbols=symbols, out=options["out"],
                                        duration_s=options["duration"], endpoints=endpoints, streams=streams))
        except KeyboardInterrupt:
            return
        except VenueError as exc:
            raise CommandError(str(exc)) from exc
        for symbol in symbols:
            files = ", ".join(p.name for p in writer.files(symbol))
            self.stdout.write(f"{symbol}: {writer.lines[symbol]} lines in {files}")
