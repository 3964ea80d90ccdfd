"""Tasks of the ``default`` queue for market data: retention."""
from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.market.prune_cob_frames", ignore_result=True,
             soft_time_limit=600, time_limit=900)
def prune_cob_frames() -> int:
    """Delete COB frames older than the admin's retention policy; scheduled hourly by bootstrap."""
    from apps.market.services import cob_frame_prune

    return cob_frame_prune()
