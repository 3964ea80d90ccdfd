"""Live market streams as the cluster runs them: a real Celery ``ingest`` worker process takes the
streams users want, connects to the replay venue (a separate process speaking Binance's protocol on
loopback) exactly as to Binance, stores what it builds, stops cleanly on a warm shutdown, and a new
worker resumes the streams by itself."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from apps.market.models import CobFrame, Instrument, MarketStream
from apps.market.streams import StreamLease

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def _broker_url() -> str:
    """A broker database of this run's own (REDIS_URL's db + 8), as in test_ingest_worker."""
    base, _, db = os.environ["REDIS_URL"].rpartition("/")
    return f"{base}/{(int(db or 0) + 8) % 16}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def venue_url(tmp_path):
    """The replay venue at 5x real time in its own process."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "apps.market.venues.replay_server", "--speed", "5", "--port", str(port)],
                            cwd=ROOT, stdout=(tmp_path / "venue.log").open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, (tmp_path / "venue.log").read_text()
            time.sleep(0.3)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=15)


def _start_worker(venue: str, log: Path) -> subprocess.Popen:
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": _broker_url(),
        "GOGO_CHECKPOINT_DIR": str(settings.GOGO_CHECKPOINT_DIR),
        "GOGO_BINANCE_REST_URL": f"http://{venue}", "GOGO_BINANCE_WS_URL": f"ws://{venue}",
        "GOGO_INFERENCE_IN_WORKER": "0",  # the models run in the ingest worker: no inference worker here
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "gogo", "worker", "-Q", "ingest", "-P", "threads", "-c", "2",
         "-n", f"test-ingest-{time.monotonic_ns()}@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )


def _wait(predicate, seconds: float, proc: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        assert proc.poll() is None, f"worker died:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def _frames(symbol: str) -> int:
    return CobFrame.objects.filter(instrument__venue="binance", instrument__symbol=symbol).count()


def test_an_ingest_worker_runs_the_wanted_streams_and_a_new_worker_resumes_them(pipeline_ready, venue_url, tmp_path):
    instruments = list(Instrument.objects.filter(venue="binance", symbol__in=["ETHUSDT", "BTCUSDT"]))
    MarketStream.objects.filter(instrument__in=instruments).update(desired="running", status="idle")
    eth = next(i for i in instruments if i.symbol == "ETHUSDT")

    first_log = tmp_path / "ingest-1.log"
    first = _start_worker(venue_url, first_log)
    try:
        _wait(lambda: MarketStream.objects.get(instrument=eth).status == "live" and _frames("ETHUSDT") >= 5,
              120, first, first_log, "the first worker's stream to go live and store frames")
        assert StreamLease(eth).held_elsewhere()  # the worker holds the instrument's lease
        assert "run_market_stream" in first_log.read_text()
    finally:
        first.send_signal(signal.SIGTERM)  # warm shutdown: the session stops and releases its leases
        first.wait(timeout=60)
    assert first.returncode == 0, first_log.read_text()[-3000:]
    stream = MarketStream.objects.get(instrument=eth)
    assert stream.status == "stopped" and stream.desired == "running"
    assert not StreamLease(eth).held_elsewhere()
    frames_before = _frames("ETHUSDT")

    second_log = tmp_path / "ingest-2.log"
    second = _start_worker(venue_url, second_log)
    try:
        _wait(lambda: MarketStream.objects.get(instrument=eth).status == "live" and _frames("ETHUSDT") >= frames_before + 5,
              120, second, second_log, "the second worker to resume the stream")
        assert _frames("BTCUSDT") > 0
        MarketStream.objects.filter(instrument__in=instruments).update(desired="stopped")
        _wait(lambda: MarketStream.objects.get(instrument=eth).status == "stopped", 30, second, second_log,
              "the stream to stop when the user no longer wants it")
        assert not StreamLease(eth).held_elsewhere()
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
