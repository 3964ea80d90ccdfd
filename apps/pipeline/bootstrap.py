"""First-start setup shared by ``make run``, ``replay`` and tests: instruments, history, models."""
from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings

from apps.market.services import history_load, instrument_ensure_defaults
from apps.market.streams import stream_defaults_ensure

logger = logging.getLogger(__name__)


def bootstrap(*, progress: Callable[[float, str], None] | None = None) -> None:
    """Idempotent: default instruments, recorded 1m/1h/1d history, registry settings, one loadable
    checkpoint per enabled model (trained on first start: CNN and DQN on the 1m/1h/1d history, the
    transformer on the recorded USD-M session), the inference-history retention schedule, and a
    (stopped) stream row per instrument with the stream watchdog schedule.

    Raises FileNotFoundError naming a missing history file (GOGO_DATA_DIR)."""
    from apps.predictions.services import models_load_enabled, registry_defaults_ensure

    for instrument in instrument_ensure_defaults():
        if instrument.venue == instrument.Venue.BINANCE:
            counts = history_load(instrument=instrument, data_dir=settings.GOGO_DATA_DIR)
            if any(counts.values()):
                logger.info("history %s: %s", instrument.symbol, counts)
    registry_defaults_ensure()
    stream_defaults_ensure()
    models_load_enabled(progress=progress)
