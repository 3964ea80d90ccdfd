"""Tasks of the ``ingest`` queue: market data sessions."""
from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down

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


@shared_task(name="workers.ingest.run_market_stream", acks_late=False, ignore_result=True)
def run_market_stream(venue: str) -> dict:
    """Run ``venue``'s wanted live streams (apps.pipeline.stream_runner) until stopped or taken over.

    Long-running by design: it holds the streams' leases while it runs, so a duplicate delivery or
    a second worker exits at once with status "busy".
    """
    from apps.pipeline.stream_runner import publish_blocking, stream_session_run

    result = stream_session_run(venue=venue, publish=publish_blocking)
    result.pop("summary", None)
    return result


def market_stream_start(venue: str) -> None:
    """Start ``venue``'s stream session: on the ``ingest`` queue, or embedded (eager tasks, which
    would block the caller for the whole session) on a thread of this process."""
    from django.conf import settings

    if settings.CELERY_TASK_ALWAYS_EAGER:
        from apps.pipeline.stream_runner import embedded_start

        embedded_start(venue=venue)
        return
    run_market_stream.delay(venue)


@shared_task(name="workers.ingest.streams_watchdog", ignore_result=True)
def streams_watchdog() -> list[str]:
    """Every 30 s (beat) and when an ingest worker starts: restart wanted streams nobody runs."""
    from apps.market.streams import stream_start_due

    return stream_start_due()


@worker_ready.connect
def _resume_streams(sender=None, **kwargs) -> None:
    """An ``ingest`` worker that (re)starts resumes the streams users left running: now, and once
    more after the lease TTL in case a worker that died without releasing still holds them."""
    if "ingest" not in _consumed_queues(sender):
        return
    from apps.market.streams import LEASE_TTL_S, stream_start_due, venues_wanted

    stream_start_due()
    for venue in venues_wanted():
        run_market_stream.apply_async((venue,), countdown=LEASE_TTL_S + 2)


@worker_shutting_down.connect
def _stop_streams(**kwargs) -> None:
    """Warm shutdown: stop this process's stream sessions (they never finish by themselves) so the
    worker can exit and release the leases. Needs the ``threads`` or ``solo`` pool (tasks in this
    process), which the ingest worker uses (scripts/run.sh, docker-compose.yml)."""
    from apps.pipeline import stream_runner

    stream_runner.SHUTDOWN.set()


def _consumed_queues(consumer) -> set[str]:
    """Queue names this worker consumes (``-Q``): ``app.amqp.queues.consume_from`` (all when unset)."""
    queues = getattr(getattr(consumer, "app", None), "amqp", None)
    queues = getattr(queues, "queues", None)
    if queues is None:
        return set()
    selected = getattr(queues, "consume_from", None)
    return set(selected or queues)
