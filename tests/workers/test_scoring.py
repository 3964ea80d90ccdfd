"""Outcome scoring as the distributed setup runs it: a real Celery ``default`` worker process, the
Redis broker (REDIS_URL's own database), the test database."""
from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from apps.market.convert import ms_to_datetime
from apps.market.models import Candle, Instrument
from apps.predictions import services
from apps.predictions.models import PredictionOutcome
from gogo.celery import app
from ml.models.output import ModelOutput
from tests.workers.conftest import celery_broker

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_893_456_000_000
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(pipeline_ready, tmp_path):
    import os

    db = settings.DATABASES["default"]
    env = {**os.environ, "CELERY_BROKER_URL": os.environ["REDIS_URL"],
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}
    log = tmp_path / "default.log"
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "gogo", "worker", "-Q", "default", "-c", "1",
                             "-n", "test-scoring@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
                            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    broker = celery_broker(os.environ["REDIS_URL"])
    broker.__enter__()
    try:
        yield proc, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        app.control.purge()  # the deferred tasks the worker held until their ETA
        broker.__exit__(None, None, None)


def _wait(predicate, proc, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)


def test_the_worker_sweeps_due_predictions_and_live_scoring_is_deferred_by_each_horizon(worker, settings):
    from apps.predictions.outcomes import outcome_schedule

    proc, log = worker
    eth = Instrument.objects.get(venue="binance", symbol="ETHUSDT")
    Candle.objects.bulk_create([
        Candle(instrument=eth, timeframe="1s", open_time=ms_to_datetime(T0 + k * 1000), open=Decimal(100),
               high=Decimal(100), low=Decimal(100), close=Decimal(100 + k // 60), volume=Decimal(1)) for k in range(200)])
    for k in range(10):
        services.prediction_record(instrument=eth, model_name="cnn", checkpoint=None, ts_event_ms=T0 + k * 1000,
                                   completeness={}, output=ModelOutput.from_probs(
                                       model_name="cnn", model_version="t", probs=np.array([0.6, 0.2, 0.2])))
    app.send_task("workers.scoring.score_outcomes_sweep", queue="default")
    _wait(lambda: PredictionOutcome.objects.filter(horizon="1m").count() == 10, proc, log)
    assert all(PredictionOutcome.objects.filter(horizon="1m").values_list("correct", flat=True))  # +1 % each

    settings.CELERY_TASK_ALWAYS_EAGER = False
    from django.core.cache import cache

    cache.delete(f"gogo:scoring:scheduled:{eth.pk}")
    assert outcome_schedule(instrument_id=eth.pk, ts_event_ms=T0) == 4
    assert outcome_schedule(instrument_id=eth.pk, ts_event_ms=T0 + 1000) == 0  # throttled
    _wait(lambda: log.read_text().count("workers.scoring.score_outcomes[") >= 4, proc, log, 30)
    time.sleep(2)
    deferred = [line for line in log.read_text().splitlines() if "workers.scoring.score_outcomes[" in line]
    assert len(deferred) == 4 and not any("succeeded" in line for line in deferred)  # held until the horizon ends
