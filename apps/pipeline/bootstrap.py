"""First-start setup shared by ``make run``, ``replay`` and tests: instruments, history, model."""
from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings

from apps.market.services import history_load, instrument_ensure_defaults

logger = logging.getLogger(__name__)


def bootstrap(*, progress: Callable[[float, str], None] | None = None) -> None:
    """Idempotent: default instruments, recorded 1m/1h/1d history, a trained CNN checkpoint.

    Raises FileNotFoundError naming a missing history file (GOGO_DATA_DIR)."""
    from apps.predictions.services import cnn_load_live

    for instrument in instrument_ensure_defaults():
        if instrument.venue == instrument.Venue.BINANCE:
            counts = history_load(instrument=instrument, data_dir=settings.GOGO_DATA_DIR)
            if any(counts.values()):
                logger.info("history %s: %s", instrument.symbol, counts)
    cnn_load_live(progress=progress)
