"""ASGI lifespan handler: what starts with the server (``GOGO_AUTOSTART``), what stops with it.

"streams": the live market streams of the default instruments (ETHUSDT traded, BTCUSDT reference)
are asked to run (``apps.market.streams.stream_request``): embedded, on a thread of this process;
with workers, on the ``ingest`` queue. "replay": the in-process replay of the recorded session.
Embedded, the server's event loop is remembered so session threads can publish on it.
"""
from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings

logger = logging.getLogger(__name__)


class LifespanApp:
    async def __call__(self, scope, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                from apps.pipeline import stream_runner

                stream_runner.SERVER_LOOP = asyncio.get_running_loop()
                if settings.GOGO_AUTOSTART == "replay":
                    from apps.pipeline import control
                    from apps.pipeline.services import session_start

                    control.session_set(state="idle")
                    started = session_start(speed=control.parse_speed(settings.GOGO_REPLAY_SPEED))
                    logger.info("replay session autostart: %s", "started" if started else "already running")
                elif settings.GOGO_AUTOSTART == "streams":
                    await sync_to_async(_streams_autostart)()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                from apps.pipeline import control, stream_runner

                control.session_request_stop()
                stream_runner.SHUTDOWN.set()  # stream threads stop and release their leases
                await send({"type": "lifespan.shutdown.complete"})
                return


def _streams_autostart() -> None:
    from apps.market.models import Instrument
    from apps.market.streams import stream_request

    instruments = list(Instrument.objects.filter(venue=Instrument.Venue.BINANCE, enabled=True))
    stream_request(instruments=instruments, desired="running")
    logger.info("market streams autostart: %s", ", ".join(i.symbol for i in instruments))
