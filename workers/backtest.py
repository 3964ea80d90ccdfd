"""Tasks of the ``default`` queue: run one backtest row (created by the backtest page)."""
from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.backtest.run_backtest", acks_late=True, ignore_result=True,
             soft_time_limit=3 * 3600, time_limit=3 * 3600 + 300)
def run_backtest(run_id: int) -> None:
    """Run the PENDING BacktestRun ``run_id`` (claimed with a conditional UPDATE so two workers
    never run it twice); failures are stored on the row (``status`` FAILED, ``error``)."""
    from apps.backtest.models import BacktestRun
    from apps.backtest.services import BacktestError, backtest_run

    claimed = BacktestRun.objects.filter(pk=run_id, status=BacktestRun.Status.PENDING).update(
        status=BacktestRun.Status.RUNNING)
    if not claimed:
        logger.info("backtest %s already claimed", run_id)
        return
    try:
        backtest_run(run=BacktestRun.objects.get(pk=run_id))
    except BacktestError as exc:  # stored on the row; a permanent error is not retried
        logger.warning("backtest %s: %s", run_id, exc)
