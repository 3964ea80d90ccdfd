"""Replay drivers for the engine: pacing (replay speed), publishing, stopping. (The live streams'
driver is ``apps.pipeline.stream_runner``; both use only the engine's public API.)

``run_blocking`` serves the headless command and the Celery worker; ``run_on_loop`` serves the
embedded web server, where the engine runs on one dedicated thread and updates are published on
the server's own event loop (the in-memory channel layer lives on that loop).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection

from apps.pipeline import control

logger = logging.getLogger(__name__)
GROUP = "dashboard"


def default_recordings(data_dir: Path | None = None) -> dict[str, list[Path]]:
    """The 2024-08-08/09 Binance spot session: ETHUSDT and BTCUSDT, two files each."""
    from ml.market.recording import default_spot_session

    return default_spot_session(Path(data_dir or settings.GOGO_DATA_DIR))


def recordings_from_paths(paths: list[str]) -> dict[str, list[Path]]:
    """Group recording files by symbol (file names start with the symbol: ``ethusdt_2024...gz``),
    keeping the given order within a symbol. Raises FileNotFoundError for a missing file."""
    grouped: dict[str, list[Path]] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"recording not found: {path}")
        grouped.setdefault(path.name.split("_")[0].upper(), []).append(path)
    return grouped


class Pacer:
    """Keeps exchange time and wall time in step at ``speed`` x real time (None: no waiting)."""

    def __init__(self) -> None:
        self.anchor: tuple[float, int, float | None] | None = None  # wall, exchange ms, speed

    def delay(self, ts: int, speed: float | None) -> float:
        now = time.monotonic()
        if speed is None:
            self.anchor = None
            return 0.0
        if self.anchor is None or self.anchor[2] != speed:
            self.anchor = (now, ts, speed)
        wall0, ts0, _ = self.anchor
        return max(0.0, wall0 + (ts + 1000 - ts0) / 1000 / speed - now)


async def publish_session_async() -> None:
    """Tell every dashboard the session's state (started, finished, failed)."""
    from channels.layers import get_channel_layer

    await get_channel_layer().group_send(GROUP, {"type": "session.state", "session": control.session_state()})


def publish_session_blocking() -> None:
    from asgiref.sync import async_to_sync

    async_to_sync(publish_session_async)()


def publish_blocking(update: dict) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    async_to_sync(get_channel_layer().group_send)(GROUP, {"type": "tick", "payload": update})


def run_blocking(engine, *, speed: float | None, publish: Callable[[dict], None] | None = None,
                 follow_control: bool = False) -> dict:
    """Run the engine to the end (or until a stop is requested); returns engine.summary()."""
    pacer = Pacer()
    for update in engine.run():
        if publish is not None:
            publish(update)
        if follow_control:
            control.session_set(state="running", ts=update["ts"], first_ts=engine.first_ts)
            if control.session_stop_requested():
                logger.info("session stop requested at %s", update["ts"])
                break
            speed = control.session_speed()
        wait = pacer.delay(update["ts"], speed)
        if wait:
            time.sleep(wait)
    engine.flush()
    return engine.summary()


async def run_on_loop(engine_factory: Callable[[], object], publish: Callable[[dict], Awaitable[None]]) -> None:
    """Embedded mode: build and step the engine on one worker thread, publish on this loop."""
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gogo-session")
    pacer = Pacer()
    try:
        engine = await loop.run_in_executor(executor, engine_factory)
        iterator = engine.run()
        while True:
            update = await loop.run_in_executor(executor, next, iterator, None)
            if update is None:
                break
            await publish(update)
            control.session_set(state="running", ts=update["ts"], first_ts=engine.first_ts)
            if control.session_stop_requested():
                break
            await asyncio.sleep(pacer.delay(update["ts"], control.session_speed()))
        await loop.run_in_executor(executor, engine.flush)
        control.session_set(state="finished")
    except Exception as exc:  # the session must report, not vanish silently
        logger.exception("session failed")
        control.session_set(state="failed", error=str(exc)[:500])
    finally:
        await publish_session_async()
        await loop.run_in_executor(executor, _close_connection)
        executor.shutdown(wait=False)


def _close_connection() -> None:
    close_old_connections()
    connection.close()
