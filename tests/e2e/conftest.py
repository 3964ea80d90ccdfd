"""Browser tests: Debian's chromium driven by Playwright against a real ASGI server (uvicorn).

The server runs ``gogo.asgi.application`` in a background thread of this process, on the test
database (tests are ``django_db(transaction=True)`` so its rows are committed and visible there),
with the configured Redis channel layer and cache under prefixes of their own.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import factory
import pytest
from django.contrib.auth import get_user_model

from apps.trading.models import TradingAccount

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-quic", "--no-first-run",
]
PASSWORD = "a-long-test-password"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"e2e-user{n}")
    password = factory.django.Password(PASSWORD)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium; installed with apt when missing and we are root, else a clear failure."""
    if not CHROMIUM.exists():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (sudo apt-get install -y chromium)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
        if not CHROMIUM.exists():
            pytest.fail(f"apt-get install chromium did not provide {CHROMIUM}")
    return CHROMIUM


@pytest.fixture
def page(chromium, live_server_url):
    """A 1280x800 page; ``page.problems`` collects console errors, page errors and failed requests.

    Playwright's sync API keeps an event loop on this thread while it runs, and Django refuses DB
    calls from a thread with a running loop: so the browser lives only inside the test body, after
    the DB fixtures are set up and before the tables are flushed (the fixture order sees to it).
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.problems = []
        page.on("console", lambda m: page.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: page.problems.append(f"request failed: {r.url} {r.failure}"))
        yield page
        context.close()
        browser.close()


@pytest.fixture
def artifacts() -> Path:
    from django.conf import settings

    path = Path(settings.BASE_DIR) / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def isolated_redis(settings) -> str:
    """Channel layer and cache (replay-session state) on the real Redis, under this test's prefix:
    a dev server or a concurrent test run cannot publish into, or start/stop, our session."""
    prefix = f"e2e-{uuid.uuid4().hex[:10]}"
    layer = dict(settings.CHANNEL_LAYERS["default"])
    if "RedisChannelLayer" in layer["BACKEND"]:
        layer["CONFIG"] = {**layer.get("CONFIG", {}), "prefix": prefix}
    settings.CHANNEL_LAYERS = {"default": layer}
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}
    return prefix


@pytest.fixture
def pipeline(transactional_db, settings, checkpoint_dir):
    """Instruments, 1m/1h/1d history and the CNN, as ``make run`` has them (``bootstrap()``).

    Earlier transactional tests empty the tables; the CNN trained for this session is still on
    disk, and ``bootstrap()`` registers it again instead of training a new one."""
    from apps.pipeline.bootstrap import bootstrap

    settings.GOGO_CHECKPOINT_DIR = checkpoint_dir
    settings.GOGO_CNN_EPOCHS = settings.GOGO_CNN_EPOCHS or 1
    bootstrap()


@pytest.fixture
def staff_account(transactional_db) -> TradingAccount:
    """An auto-trading paper account (the engine trades for it) of a staff user."""
    return TradingAccount.objects.create(owner=UserFactory(is_staff=True), name="paper")


@pytest.fixture
def viewer(transactional_db):
    """A signed-up user who is not staff."""
    return UserFactory(is_staff=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server_url(transactional_db, isolated_redis) -> Iterator[str]:
    """``gogo.asgi.application`` under uvicorn (lifespan on) on a free 127.0.0.1 port."""
    import uvicorn

    from apps.pipeline import control
    from gogo.asgi import application

    port = _free_port()
    config = uvicorn.Config(application, host="127.0.0.1", port=port, lifespan="on", ws="websockets-sansio",
                            log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-e2e", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    # A session still running would be cancelled mid-second by the shutdown: stop it first.
    if control.session_state().get("state") in ("starting", "running"):
        control.session_request_stop()
        wait_until(lambda: control.session_state().get("state") not in ("starting", "running"), timeout=20)
    server.should_exit = True
    thread.join(timeout=15)


def wait_until(predicate, *, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
