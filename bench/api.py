"""REST throughput: the candles list endpoint (50 rows) on the production server setup.

Server: uvicorn on ``gogo.asgi`` (the command of docker-compose's ``web`` service) with one worker
per core (``WEB_CONCURRENCY`` in compose), httptools + uvloop, ``DJANGO_DEBUG=false`` (HTTPS
settings on; requests arrive as from the TLS proxy with ``X-Forwarded-Proto: https``), token
authentication (cached per process, ``apps.api.authentication``), per-user throttling in Redis (rates
raised so the load is not refused), a psycopg pool of at most ``POOL_MAX`` connections per worker,
against the database of ``DATABASE_URL`` (created and migrated when missing, ETHUSDT 1m history loaded).

Load: ``wrk`` (Debian package ``wrk``; one thread) for ``DURATION_S`` with ``CONNECTIONS``
connections after a warm-up; without wrk an aiohttp client does the same (it costs far more CPU).
Printed: ``api_candles_throughput`` req/s and ``api_candles_latency`` p50/p99 ms (target >= 800 req/s,
p99 < 50 ms on 2 cores), the CPU the load generator and the server used (in cores), the same run
for ``/api/v1/health/`` (the server stack alone), and the machine's load average before and after
(other jobs share the cores: figures from a shared machine are lower bounds).

Where the time goes (measured on this 2-core VM, in-process, CPU per request): Django's ASGI handler
alone ~3.5 ms even for ``/health/`` (7 sync<->async thread hops for the request signals and the sync
middleware chain, and a new thread per request from asgiref's ThreadSensitiveContext) against 0.5 ms
through the WSGI-style test client; the candles list adds ~4 ms (django-filter validation, the SQL
compile and the Decimal/datetime row conversion). The token cache, the one-round-trip throttle, the
``.values`` rows, orjson and the per-class filter form halved the Python work of the list.

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
# Connections: Little's law puts the p99 target (50 ms) at about throughput x 0.05 requests in flight.
WORKERS, CONNECTIONS, DURATION_S, WARMUP_S, POOL_MAX = os.cpu_count() or 2, 8, 15, 3, 4
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/gogo_bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerURL(str):
    """The base URL of a running server (``http://127.0.0.1:<port>``) with its process id ``pid``."""

    pid: int


@contextmanager
def live_server(*, database: str, redis: str, workers: int = 1, extra_env: dict | None = None, log=None):
    """Run the production server setup (uvicorn, DEBUG off) on a free port; yields its base URL
    (a ServerURL, ``http://127.0.0.1:<port>``, with the server's ``pid``) once ``/api/v1/health/``
    answers; stops it afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GOGO_AUTOSTART"))}
    env.update(DATABASE_URL=database, REDIS_URL=redis, DJANGO_DEBUG="false", DJANGO_DB_POOL="true",
               DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_SETTINGS_MODULE="gogo.settings",
               GOGO_API_USER_RATE="1000000/min", GOGO_API_ANON_RATE="1000000/min", LOG_LEVEL="WARNING", **(extra_env or {}))
    env.setdefault("DJANGO_DB_POOL_MAX_SIZE", str(POOL_MAX))
    cmd = [sys.executable, "-m", "uvicorn", "gogo.asgi:application", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--http", "httptools", "--loop", "uvloop", "--lifespan", "off",
           "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log or subprocess.DEVNULL, stderr=log or subprocess.STDOUT)
    base = ServerURL(f"http://127.0.0.1:{port}")
    base.pid = process.pid
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


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children that are still running (uvicorn's
    workers), from /proc (0.0 where /proc is missing)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
    load_before = os.getloadavg()[0]
    with live_server(database=database, redis=redis, workers=WORKERS) as base:
        url = f"{base}/api/v1/candles/?instrument={setup['instrument']}&timeframe=1m&limit=50"
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request) as response:
            rows = len(json.loads(response.read())["results"])
        load(url, headers, WARMUP_S, connections)
        server_cpu, tool_cpu = _cpu_seconds(base.pid), _children_cpu()
        rps, p50, p99, bad = load(url, headers, duration_s, connections)
        server_cores = (_cpu_seconds(base.pid) - server_cpu) / duration_s
        tool_cores = (_children_cpu() - tool_cpu) / duration_s
        # Baseline of the same server without auth, database or serializer: what the stack alone costs.
        health_rps, _, health_p99, _ = load(f"{base}/api/v1/health/", PROXY_HEADERS, WARMUP_S * 2, connections)
    tool = "wrk (1 thread)" if load is _wrk else "aiohttp (in this process)"
    cores = os.cpu_count()
    print(f"api_candles_setup: uvicorn {WORKERS} workers (httptools, uvloop), DEBUG off, token auth + throttling, "
          f"{rows} rows/response, {connections} connections, {duration_s} s, {tool}, {cores} cores shared with the "
          f"load tool, Postgres and Redis")
    print(f"api_candles_throughput: {rps:.0f} req/s ({bad} non-2xx)")
    print(f"api_candles_latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"api_candles_cpu: server {server_cores:.2f} cores, load generator {tool_cores:.2f} cores"
          f"{'' if load is _wrk else ' (not measured: in-process)'} of {cores}")
    if server_cores > 0:
        # What the server does per core it got: the figure that other jobs on the machine distort least.
        print(f"api_candles_per_server_core: {rps / server_cores:.0f} req/s per core "
              f"({server_cores * 1000 / max(rps, 1e-9):.1f} ms server CPU per request; 800 req/s on 2 cores needs <= 2.5 ms)")
    print(f"api_health_throughput: {health_rps:.0f} req/s, p99 {health_p99:.1f} ms (baseline: no auth, no database)")
    print(f"api_bench_load_average: {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (1 min, on {cores} cores; "
          f"other processes share them)")


if __name__ == "__main__":
    if "--prepare" in sys.argv:
        _prepare()
    else:
        bench_api()
