"""Suite-wide setup: real Postgres, Redis and recorded data, or nothing.

The suite refuses to run (exit code 3) when DATABASE_URL / REDIS_URL are unset or unreachable, so
no test is skipped silently. ``make test`` sets both to the local services.
"""
from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest


def _reachable(url: str, default_port: int) -> str | None:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=3):
            return None
    except OSError as exc:
        return f"{parsed.hostname}:{parsed.port or default_port}: {exc}"


def pytest_configure(config) -> None:
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database_url.startswith("postgres") or not redis_url.startswith("redis"):
        pytest.exit("DATABASE_URL (postgres://...) and REDIS_URL (redis://...) must be set: run `make test`", 3)
    for name, url, port in (("Postgres", database_url, 5432), ("Redis", redis_url, 6379)):
        error = _reachable(url, port)
        if error:
            pytest.exit(f"{name} cannot be reached ({error}); the suite needs the real service", 3)
    from ml.market.recording import default_data_dir

    if not (default_data_dir() / "orderbook").is_dir():
        pytest.exit(f"recorded market data not found in {default_data_dir()}: set GOGO_DATA_DIR", 3)


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory):
    """Checkpoints of this test session (the CNN is trained once, then found on disk)."""
    return tmp_path_factory.mktemp("checkpoints")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker, checkpoint_dir):
    """After the test database exists: instruments, recorded history and a trained CNN, once."""
    from django.conf import settings

    from apps.pipeline.bootstrap import bootstrap

    settings.GOGO_CHECKPOINT_DIR = checkpoint_dir
    if not os.environ.get("GOGO_TRAIN_STRIDE_MIN"):  # the first models train on every 60th minute
        settings.GOGO_TRAIN_STRIDE_MIN = 60
    with django_db_blocker.unblock():
        bootstrap()


@pytest.fixture
def pipeline_ready(db, settings, checkpoint_dir):
    """Bootstrap again (cheap when nothing was flushed): transactional tests empty the tables."""
    from apps.pipeline.bootstrap import bootstrap

    settings.GOGO_CHECKPOINT_DIR = checkpoint_dir
    bootstrap()


@pytest.fixture(autouse=True)
def _clean_session_state():
    """The replay-session state lives in the cache (Redis in tests): start each test idle."""
    from django.core.cache import cache

    from apps.pipeline import control

    cache.delete_many([control.STATE_KEY, control.STOP_KEY])
    yield
