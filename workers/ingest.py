"""Tasks of the ``ingest`` queue: market data sessions."""
from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.ingest.run_replay_session", acks_late=False)
def run_replay_session() -> dict:
    """Run the default replay session, publishing each second to the dashboard group.

    The session's claim and speed live in the cache (apps.pipeline.control), so the web process can
    change the speed or stop it while it runs.
    """
    from apps.pipeline import control
    from apps.pipeline.engine import Engine
    from apps.pipeline.runner import default_recordings, publish_blocking, publish_session_blocking, run_blocking

    try:
        engine = Engine(recordings=default_recordings())
        summary = run_blocking(engine, speed=control.session_speed(), publish=publish_blocking, follow_control=True)
    except Exception as exc:
        logger.exception("replay session failed")
        control.session_set(state="failed", error=str(exc)[:500])
        publish_session_blocking()
        raise
    control.session_set(state="finished")
    publish_session_blocking()
    return summary
