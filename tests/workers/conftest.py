"""Real Celery worker processes: the test process sends to them through its own broker database."""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def celery_broker(url: str):
    """Point the test process's Celery app at ``url`` (tasks sent, not run eagerly) and back.

    The app's connection and producer pools are dropped both ways: a pool created earlier in the
    session (under another broker URL) would otherwise keep sending there, and the worker under
    test would never receive the task."""
    from gogo.celery import app

    previous = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}
    app.conf.update(broker_url=url, task_always_eager=False)
    _drop_pools(app)
    try:
        yield app
    finally:
        app.conf.update(**previous)
        _drop_pools(app)


def _drop_pools(app) -> None:
    pool = getattr(app, "_pool", None)
    if pool is not None:
        pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
