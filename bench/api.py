"""REST throughput: the candles list endpoint (50 rows) on the production server setup.

uvicorn on ``gogo.asgi`` with 2 worker processes and ``DJANGO_DEBUG=false`` (HTTPS settings on,
requests arrive as from the TLS proxy with ``X-Forwarded-Proto: https``), token authentication,
throttling on (rates raised so the load is not refused), against the database of ``DATABASE_URL``
(Postgres; created and migrated when missing, ETHUSDT 1m history loaded). Load: ``wrk`` (Debian
package) for ``DURATION_S`` with ``CONNECTIONS`` connections after a warm-up; without wrk an
aiohttp client does the same. Printed: ``api_candles_throughput`` req/s and ``api_candles_latency``
p50/p99 ms (target >= 800 req/s, p99 < 50 ms on 2 cores), then the same for ``/api/v1/health/``
(the server stack alone) and the machine's load average (figures from a shared machine mean little).

``python -m bench.api`` runs it alone; ``python -m bench.api --prepare`` is the setup step it runs
in a subprocess (migrate, history, bench user) and prints ``{"instrument": id, "token": key}``.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}  # as the TLS-terminating proxy sends it
WORKERS, CONNECTIONS, DURATION_S, WARMUP_S = 2, 32, 15, 3
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/gogo_bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(*, database: str, redis: str, workers: int = 1, extra_env: dict | None = None, log=None):
    """Run the production server setup (uvicorn, DEBUG off) on a free port; yields its base URL
    ``http://127.0.0.1:<port>`` once ``/api/v1/health/`` answers; stops it afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GOGO_AUTOSTART"))}
    env.update(DATABASE_URL=database, REDIS_URL=redis, DJANGO_DEBUG="false", DJANGO_DB_POOL="true",
               DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_SETTINGS_MODULE="gogo.settings",
               GOGO_API_USER_RATE="1000000/min", GOGO_API_ANON_RATE="1000000/min", LOG_LEVEL="WARNING", **(extra_env or {}))
    cmd = [sys.executable, "-m", "uvicorn", "gogo.asgi:application", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--lifespan", "off", "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log or subprocess.DEVNULL, stderr=log or subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(base: str, process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before answering")
        try:
            request = urllib.request.Request(f"{base}/api/v1/health/", headers=PROXY_HEADERS)
            with urllib.request.urlopen(request, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the server did not answer /api/v1/health/ in time")


def _ensure_postgres_database(url: str) -> None:
    from urllib.parse import urlparse

    import psycopg

    name = urlparse(url).path.lstrip("/")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _prepare() -> None:
    """(In a subprocess with the bench's DATABASE_URL.) Migrate, load ETHUSDT history, make the user."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gogo.settings")
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from apps.market.models import Instrument
    from apps.market.services import history_load, instrument_ensure_defaults

    call_command("migrate", verbosity=0)
    instrument_ensure_defaults()
    eth = Instrument.objects.get(venue=Instrument.Venue.BINANCE, symbol="ETHUSDT")
    history_load(instrument=eth, data_dir=settings.GOGO_DATA_DIR)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE market_candle")  # fresh planner statistics after the load
    user, _ = get_user_model().objects.get_or_create(username="bench-api")
    print(json.dumps({"instrument": eth.pk, "token": Token.objects.get_or_create(user=user)[0].key}))


def _wrk(url: str, headers: dict[str, str], duration_s: int, connections: int) -> tuple[float, float, float, int]:
    """(req/s, p50 ms, p99 ms, non-2xx) from ``wrk --latency``."""
    args = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration_s}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), ms("50"), ms("99"), int(bad.group(1)) if bad else 0


def _aiohttp(url: str, headers: dict[str, str], duration_s: int, connections: int) -> tuple[float, float, float, int]:
    """The same measure with an asyncio client when wrk is not installed."""
    import aiohttp
    import numpy as np

    async def run() -> tuple[list[float], int]:
        latencies, bad = [], 0
        deadline = time.perf_counter() + duration_s
        async with aiohttp.ClientSession(headers=headers) as session:
            async def worker() -> None:
                nonlocal bad
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    async with session.get(url) as response:
                        await response.read()
                        bad += response.status != 200
                    latencies.append((time.perf_counter() - started) * 1000)

            await asyncio.gather(*(worker() for _ in range(connections)))
        return latencies, bad

    latencies, bad = asyncio.run(run())
    p50, p99 = np.percentile(latencies, [50, 99])
    return len(latencies) / duration_s, float(p50), float(p99), bad


def bench_api(duration_s: int = DURATION_S, connections: int = CONNECTIONS) -> None:
    """Print the REST throughput figures (module docstring)."""
    database = os.environ.get("GOGO_BENCH_API_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis = os.environ.get("REDIS_URL", "")
    if database.startswith("postgres"):
        import psycopg

        try:
            _ensure_postgres_database(database)
        except psycopg.OperationalError as exc:
            print(f"api_candles_throughput: skipped (Postgres unreachable: {type(exc).__name__})")
            return
    prepared = subprocess.run([sys.executable, "-m", "bench.api", "--prepare"], cwd=ROOT, check=True, text=True,
                              capture_output=True, env={**os.environ, "DATABASE_URL": database, "REDIS_URL": redis})
    setup = json.loads(prepared.stdout.strip().splitlines()[-1])
    headers = {"Authorization": f"Token {setup['token']}", **PROXY_HEADERS}
    load = _wrk if shutil.which("wrk") else _aiohttp
    with live_server(database=database, redis=redis, workers=WORKERS) as base:
        url = f"{base}/api/v1/candles/?instrument={setup['instrument']}&timeframe=1m&limit=50"
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request) as response:
            rows = len(json.loads(response.read())["results"])
        load(url, headers, WARMUP_S, connections)
        rps, p50, p99, bad = load(url, headers, duration_s, connections)
        # Baseline of the same server without auth, database or serializer: what the stack alone costs.
        health_rps, _, health_p99, _ = load(f"{base}/api/v1/health/", PROXY_HEADERS, WARMUP_S * 2, connections)
    tool = "wrk" if load is _wrk else "aiohttp"
    print(f"api_candles_setup: uvicorn {WORKERS} workers, DEBUG off, token auth + throttling, {rows} rows/response, "
          f"{connections} connections, {duration_s} s, {tool}, {os.cpu_count()} cores shared with the load tool and the database")
    print(f"api_candles_throughput: {rps:.0f} req/s ({bad} non-2xx)")
    print(f"api_candles_latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"api_health_throughput: {health_rps:.0f} req/s, p99 {health_p99:.1f} ms (baseline: no auth, no database)")
    load_average = os.getloadavg()[0]
    print(f"api_bench_load_average: {load_average:.1f} (1 min, on {os.cpu_count()} cores: other processes share them)")


if __name__ == "__main__":
    if "--prepare" in sys.argv:
        _prepare()
    else:
        bench_api()
