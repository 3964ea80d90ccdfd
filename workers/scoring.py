"""Tasks of the ``default`` queue for the learning loop: outcome scoring, model alerts and the
shadow checkpoints' promotion check."""
from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="workers.scoring.score_outcomes", ignore_result=True, soft_time_limit=300, time_limit=360)
def score_outcomes(instrument_id: int, until_ms: int | None = None, horizons: list[str] | None = None) -> dict:
    """Score the instrument's due predictions (apps.predictions.outcomes); idempotent. Enqueued
    ``horizon`` after inference by ``outcome_schedule``. Returns horizon -> scored count."""
    from apps.market.models import Instrument
    from apps.predictions.outcomes import prediction_outcomes_score
    from ml.outcomes import HORIZONS_MS

    instrument = Instrument.objects.get(pk=instrument_id)
    return prediction_outcomes_score(instrument=instrument, until_ms=until_ms,
                                     horizons=tuple(horizons or HORIZONS_MS))


@shared_task(name="workers.scoring.score_outcomes_sweep", ignore_result=True, soft_time_limit=300, time_limit=360)
def score_outcomes_sweep() -> dict:
    """Every minute (beat): score every enabled traded instrument's due predictions."""
    from apps.market.models import Instrument
    from apps.predictions.outcomes import prediction_outcomes_score

    return {str(i): prediction_outcomes_score(instrument=i)
            for i in Instrument.objects.filter(enabled=True, is_traded=True)}


@shared_task(name="workers.scoring.check_model_alerts", ignore_result=True, soft_time_limit=120, time_limit=180)
def check_model_alerts() -> list[int]:
    """Every 5 minutes (beat): regression / stagnation alerts (apps.predictions.alerts); ids created."""
    from apps.predictions.alerts import model_alerts_check

    return [a.pk for a in model_alerts_check()]


@shared_task(name="workers.scoring.evaluate_shadows", ignore_result=True, soft_time_limit=240, time_limit=300)
def evaluate_shadows() -> dict:
    """Every 5 minutes (beat): judge each shadow checkpoint against the live one on the same scored
    seconds; promote, refuse or leave pending (apps.predictions.promotion). Returns checkpoint -> decision."""
    from apps.predictions.promotion import shadows_evaluate

    return shadows_evaluate()
