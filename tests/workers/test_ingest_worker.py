"""The replay session as the distributed setup runs it: a real Celery ``ingest`` worker process,
the Redis broker, the shared cache for the session state, and the test database."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from apps.market.models import CobFrame
from apps.pipeline import control
from apps.predictions.models import Prediction
from gogo.celery import app

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def _broker_url() -> str:
    base = os.environ["REDIS_URL"].rsplit("/", 1)[0]
    return f"{base}/9"


@pytest.fixture
def ingest_worker(pipeline_ready):
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": _broker_url(),
        "GOGO_CHECKPOINT_DIR": str(settings.GOGO_CHECKPOINT_DIR),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "gogo", "worker", "-Q", "ingest", "-c", "1", "-n", "test-ingest@%h",
         "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    yield worker
    worker.terminate()
    worker.wait(timeout=30)


def test_a_celery_ingest_worker_runs_the_session_and_reports_through_the_cache(ingest_worker):
    previous = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}
    app.conf.update(broker_url=_broker_url(), task_always_eager=False)
    try:
        assert control.session_claim(None)  # speed None: as fast as the worker can
        app.send_task("workers.ingest.run_replay_session", queue="ingest")
        deadline = time.monotonic() + 240
        while control.session_state()["state"] not in ("finished", "failed") and time.monotonic() < deadline:
            assert ingest_worker.poll() is None, ingest_worker.stdout.read()
            time.sleep(1)
    finally:
        app.conf.update(**previous)
    state = control.session_state()
    assert state["state"] == "finished", state
    assert state["ts"] == 1723161904000  # the session's last complete second, 2024-08-09 00:05:04 UTC
    assert CobFrame.objects.filter(instrument__symbol="ETHUSDT", instrument__venue="binance").count() == 650
    assert Prediction.objects.filter(model_name="cnn", status="predicted").count() == 470
