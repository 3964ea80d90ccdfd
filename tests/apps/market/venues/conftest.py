"""A replay venue per test on a free loopback port, stopped in teardown (no database)."""
from __future__ import annotations

import aiohttp
import pytest

from apps.market.venues.replay_server import ReplayServer
from ml.market.recording import default_spot_session


@pytest.fixture
async def server():
    """ETHUSDT + BTCUSDT spot session at 20x (the recording is cached after the first load)."""
    venue = ReplayServer(default_spot_session(), speed=20, heartbeat=5.0)
    await venue.start()
    try:
        yield venue
    finally:
        await venue.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session
