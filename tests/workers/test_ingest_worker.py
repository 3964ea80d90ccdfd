"""The replay session as the distributed setup runs it: real Celery ``ingest`` and ``inference``
worker processes, the Redis broker and result backend, the shared cache for the session state, and
the test database."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from apps.market.models import CobFrame
from apps.pipeline import control
from apps.predictions.models import Prediction
from apps.trading.models import Decision, TradingAccount
from tests.workers.conftest import celery_broker

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def _broker_url() -> str:
    """A broker database of this run's own (REDIS_URL's db + 8), so concurrent suites never share tasks."""
    base, _, db = os.environ["REDIS_URL"].rpartition("/")
    return f"{base}/{(int(db or 0) + 8) % 16}"


def _start_worker(queue: str, log: Path) -> subprocess.Popen:
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": _broker_url(),
        "GOGO_CHECKPOINT_DIR": str(settings.GOGO_CHECKPOINT_DIR),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "gogo", "worker", "-Q", queue, "-c", "1", "-n", f"test-{queue}@%h",
         "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )


@pytest.fixture
def workers(pipeline_ready, tmp_path):
    """An ``ingest`` and an ``inference`` worker process; their logs are in tmp_path."""
    procs = {q: _start_worker(q, tmp_path / f"{q}.log") for q in ("ingest", "inference")}
    yield procs, tmp_path
    for proc in procs.values():
        proc.terminate()
    for proc in procs.values():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:  # a warm shutdown that hangs must not hang the suite
            proc.kill()
            proc.wait(timeout=15)


def test_celery_workers_run_the_session_with_inference_on_its_own_queue(workers):
    procs, logs = workers
    owner = get_user_model().objects.create_user("worker-trader")
    account = TradingAccount.objects.create(owner=owner, name="paper")
    with celery_broker(_broker_url()) as celery:
        assert control.session_claim(None)  # speed None: as fast as the worker can
        celery.send_task("workers.ingest.run_replay_session", queue="ingest")
        deadline = time.monotonic() + 420
        while control.session_state()["state"] not in ("finished", "failed") and time.monotonic() < deadline:
            for queue, proc in procs.items():
                assert proc.poll() is None, (logs / f"{queue}.log").read_text()[-3000:]
            time.sleep(1)
    state = control.session_state()
    assert state["state"] == "finished", state
    assert state["ts"] == 1723161904000  # the session's last complete second, 2024-08-09 00:05:04 UTC
    assert CobFrame.objects.filter(instrument__symbol="ETHUSDT", instrument__venue="binance").count() == 650
    # Every enabled model ran on the inference worker, each second past the completeness gate.
    for model_name in ("cnn", "dqn", "transformer"):
        assert Prediction.objects.filter(model_name=model_name, status="predicted").count() == 470, model_name
    # ... and the engine decided on their combined output every one of those seconds.
    assert Decision.objects.filter(account=account).count() == 470
    assert "workers.inference.run_inference" in (logs / "inference.log").read_text()
