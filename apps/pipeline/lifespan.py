"""ASGI lifespan handler: with GOGO_AUTOSTART, the replay session starts with the server."""
from __future__ import annotations

import logging

from django.conf import settings

logger = logging.getLogger(__name__)


class LifespanApp:
    async def __call__(self, scope, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if settings.GOGO_AUTOSTART:
                    from apps.pipeline import control
                    from apps.pipeline.services import session_start

                    control.session_set(state="idle")
                    started = session_start(speed=control.parse_speed(settings.GOGO_REPLAY_SPEED))
                    logger.info("replay session autostart: %s", "started" if started else "already running")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                from apps.pipeline import control

                control.session_request_stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
