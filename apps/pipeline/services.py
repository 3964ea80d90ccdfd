"""Start and stop the replay session (embedded: on the server loop; workers: Celery ingest queue)."""
from __future__ import annotations

import asyncio
import logging

from django.conf import settings

from apps.pipeline import control

logger = logging.getLogger(__name__)
_tasks: set[asyncio.Task] = set()


def session_start(*, speed: float | None) -> bool:
    """Start the default replay session at ``speed`` (None = max). Returns False if one runs.

    Embedded default: must be called on the ASGI server's event loop. With a broker: enqueues
    ``workers.ingest.run_replay_session``.
    """
    if not control.session_claim(speed):
        return False
    if settings.CELERY_TASK_ALWAYS_EAGER:
        from apps.pipeline.runner import run_on_loop

        task = asyncio.get_running_loop().create_task(run_on_loop(_engine_factory, _publish))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)
    else:
        from workers.ingest import run_replay_session

        run_replay_session.delay()
    return True


def session_stop() -> None:
    control.session_request_stop()


def _engine_factory():
    from apps.pipeline.engine import Engine
    from apps.pipeline.runner import default_recordings

    return Engine(recordings=default_recordings())


async def _publish(update: dict) -> None:
    from channels.layers import get_channel_layer

    from apps.pipeline.runner import GROUP

    await get_channel_layer().group_send(GROUP, {"type": "tick", "payload": update})
