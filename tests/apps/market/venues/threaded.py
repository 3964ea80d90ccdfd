"""The replay venue on its own event-loop thread, for tests of blocking clients (LiveVenue, ccxt sync).

Not a test module. ``ThreadedReplay.call`` runs a fault method or coroutine on the server's loop.
"""
from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from pathlib import Path

from apps.market.venues.live import VenueEndpoints
from apps.market.venues.replay_server import ReplayServer
from ml.market.recording import default_spot_session

WAIT = 20.0  # s, bound on every wait in the live tests


class ThreadedReplay:
    """A started :class:`ReplayServer` (ETHUSDT + BTCUSDT spot session by default) on a thread."""

    def __init__(self, speed: float | None = 20.0, recordings: dict[str, list[Path]] | None = None,
                 heartbeat: float = 5.0, market: str = "spot") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="replay-server", daemon=True)
        self.thread.start()
        self.server = self.call(lambda: ReplayServer(recordings or default_spot_session(), speed=speed,
                                                     heartbeat=heartbeat, market=market))
        self.call(self.server.start(), timeout=120)  # loading a recording takes long on a busy machine

    def call(self, what: Callable | object, timeout: float = WAIT):
        """Run a coroutine, or a plain callable, on the server's loop; returns its result."""
        if inspect.iscoroutine(what):
            return asyncio.run_coroutine_threadsafe(what, self.loop).result(timeout)

        async def run():
            result = what()
            return await result if inspect.isawaitable(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    @property
    def endpoints(self) -> VenueEndpoints:
        return VenueEndpoints(rest_url=self.server.url, ws_url=self.server.ws_url)

    def stop(self) -> None:
        try:
            self.call(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()
