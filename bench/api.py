"""REST throughput: the candles list endpoint (50 rows) on the production server setup.

Server: granian in WSGI mode on ``gogo.wsgi`` (the command of docker-compose.yml's ``http`` service,
which the proxy sends all plain HTTP to) with one worker per core, ``DJANGO_DEBUG=false`` (HTTPS
settings on; requests arrive as from the TLS proxy with ``X-Forwarded-Proto: https``), token
authentication (cached per process, ``apps.api.authentication``), per-user throttling in Redis (the
``user`` rate raised to 1000000/min: every request still runs the sliding window, none is refused),
the candles hot page cache (``GOGO_API_CANDLES_CACHE_S``, 1 s: one page, many users), a psycopg pool
of at most ``POOL_MAX`` connections per worker, against the database of ``DATABASE_URL`` (created
and migrated when missing, ETHUSDT 1m history loaded). The same run measures the same server with
the cache off (every request reads Postgres) and uvicorn on ``gogo.asgi`` (the ``web`` service,
which keeps websockets and the lifespan autostart) for comparison.

Load: ``wrk`` (Debian package ``wrk``, installed by ``make bench``; one thread, pinned with taskset
to the last core) for ``DURATION_S`` with ``CONNECTIONS`` connections after a warm-up; without wrk
an aiohttp client does the same (it costs far more CPU). Printed: ``api_candles_throughput`` req/s and
``api_candles_latency`` p50/p99 ms (target >= 800 req/s, p99 < 50 ms on 2 cores), the CPU the load
generator and the server used (cores, and server ms per request: 800 req/s on 2 cores needs <= 2.5
ms), the uncached and ASGI figures, ``/api/v1/health/`` (the server stack alone), and the machine's
load average before and after (other jobs share the cores: figures from a shared machine are lower
bounds).

Why WSGI (measured on this 2-core VM, load average 2.5-4, 2 workers, 8 connections, wrk): server
CPU per candles request (cache on) granian WSGI 1.8 ms, gunicorn sync 2.7 ms (no keep-alive: a
connect per request), gunicorn gthread 2.8 ms, uvicorn ASGI 7.5 ms; ``/health/`` 0.5 / 1.2 / 0.9 /
2.9 ms. Django's ASGI handler costs ~3 ms per request by itself (7 sync<->async thread hops for the
request signals and the sync middleware chain, a new thread per request); a WSGI worker calls the
same stack directly. In-process (the WSGI handler, cProfile) a cached candles request is ~1 ms of
CPU, an uncached one ~4.5 ms (django-filter validation, the SQL compile, the row conversion).

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


def server_command(server: str, *, port: int, workers: int) -> list[str]:
    """The command line of one of ``SERVERS`` on 127.0.0.1:``port`` with ``workers`` processes."""
    bind = ["--host", "127.0.0.1", "--port", str(port)]
    if server == "granian":  # the production HTTP server (docker-compose.yml's ``http`` service)
        return [sys.executable, "-m", "granian", "--interface", "wsgi", "gogo.wsgi:application", *bind,
                "--workers", str(workers), "--blocking-threads", "1", "--no-ws", "--log-level", "warning"]
    if server == "uvicorn":  # ASGI: docker-compose.yml's ``web`` service (websockets, lifespan)
        return [sys.executable, "-m", "uvicorn", "gogo.asgi:application", *bind, "--workers", str(workers),
                "--http", "httptools", "--loop", "uvloop", "--lifespan", "off", "--log-level", "warning",
                "--no-access-log"]
    raise ValueError(f"server must be one of {SERVERS}, got {server!r}")


SERVERS = ("granian", "uvicorn")
PRODUCTION_SERVER = "granian"  # docker-compose.yml's ``http`` service: the best of SERVERS measured here


@contextmanager
def live_server(*, database: str, redis: str, workers: int = 1, server: str = PRODUCTION_SERVER,
                extra_env: dict | None = None, log=None):
    """Run the production server setup (``server``: one of ``SERVERS``; DEBUG off) on a free port;
    yields its base URL (a ServerURL, ``http://127.0.0.1:<port>``, with the server's ``pid``) once
    ``/api/v1/health/`` answers; stops it afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GOGO_AUTOSTART"))}
    env.update(DATABASE_URL=database, REDIS_URL=redis, DJANGO_DEBUG="false", DJANGO_DB_POOL="true",
               DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_SETTINGS_MODULE="gogo.settings",
               GOGO_API_USER_RATE="1000000/min", GOGO_API_ANON_RATE="1000000/min", LOG_LEVEL="WARNING", **(extra_env or {}))
    env.setdefault("DJANGO_DB_POOL_MAX_SIZE", str(POOL_MAX))
    cmd = server_command(server, port=port, workers=workers)
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
    args = _taskset(["wrk", "-t", "1", "-c", str(connections), "-d", f"{duration_s}s", "--latency"])
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


def _taskset(args: list[str]) -> list[str]:
    """``args`` pinned to the last core with taskset (util-linux) where there are 2+ cores: the load
    generator then stays off the other core instead of migrating between the server's two."""
    cores = os.cpu_count() or 1
    return ["taskset", "-c", str(cores - 1), *args] if cores > 1 and shutil.which("taskset") else args


def _measure(server: str, *, database: str, redis: str, setup: dict, load, duration_s: int, connections: int,
             extra_env: dict | None = None) -> dict:
    """Run ``server`` with WORKERS workers; load the candles list (after a warm-up), then /health/.
    Returns req/s, p50/p99 ms, non-2xx, server and load generator CPU (cores) and rows per response."""
    headers = {"Authorization": f"Token {setup['token']}", **PROXY_HEADERS}
    with live_server(database=database, redis=redis, workers=WORKERS, server=server, extra_env=extra_env) as base:
        url = f"{base}/api/v1/candles/?instrument={setup['instrument']}&timeframe=1m&limit=50"
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
            rows = len(json.loads(response.read())["results"])
        load(url, headers, WARMUP_S, connections)
        server_cpu, tool_cpu = _cpu_seconds(base.pid), _children_cpu()
        rps, p50, p99, bad = load(url, headers, duration_s, connections)
        server_cores = (_cpu_seconds(base.pid) - server_cpu) / duration_s
        tool_cores = (_children_cpu() - tool_cpu) / duration_s
        # Baseline of the same server without auth, database or serializer: what the stack alone costs.
        health_cpu = _cpu_seconds(base.pid)
        health_rps, _, health_p99, _ = load(f"{base}/api/v1/health/", PROXY_HEADERS, WARMUP_S * 2, connections)
        health_cores = (_cpu_seconds(base.pid) - health_cpu) / (WARMUP_S * 2)
    return {"rps": rps, "p50": p50, "p99": p99, "bad": bad, "server_cores": server_cores, "tool_cores": tool_cores,
            "rows": rows, "health_rps": health_rps, "health_p99": health_p99, "health_cores": health_cores}


def _ms_per_request(cores: float, rps: float) -> str:
    return f"{cores * 1000 / max(rps, 1e-9):.2f} ms server CPU/request"


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
    load = _wrk if shutil.which("wrk") else _aiohttp
    run = dict(database=database, redis=redis, setup=setup, load=load, connections=connections)
    load_before = os.getloadavg()[0]
    wsgi = _measure(PRODUCTION_SERVER, duration_s=duration_s, **run)
    uncached = _measure(PRODUCTION_SERVER, duration_s=duration_s // 2, extra_env={"GOGO_API_CANDLES_CACHE_S": "0"}, **run)
    asgi = _measure("uvicorn", duration_s=duration_s // 2, **run)
    tool = f"wrk (1 thread{', taskset to one core' if _taskset([]) else ''})" if load is _wrk else "aiohttp (in this process)"
    cores = os.cpu_count()
    print(f"api_candles_setup: {PRODUCTION_SERVER} WSGI (gogo.wsgi), {WORKERS} workers, DEBUG off, token auth + "
          f"per-user throttling in Redis (rate raised to 1000000/min: every request is counted, none refused), "
          f"hot page cache {os.environ.get('GOGO_API_CANDLES_CACHE_S', '1')} s, {wsgi['rows']} rows/response, "
          f"{connections} connections, {duration_s} s, {tool}, {cores} cores shared with the load tool, "
          f"Postgres and Redis")
    print(f"api_candles_throughput: {wsgi['rps']:.0f} req/s ({wsgi['bad']} non-2xx; target >= 800)")
    print(f"api_candles_latency: p50 {wsgi['p50']:.1f} ms, p99 {wsgi['p99']:.1f} ms (target p99 < 50)")
    print(f"api_candles_cpu: server {wsgi['server_cores']:.2f} cores ({_ms_per_request(wsgi['server_cores'], wsgi['rps'])}; "
          f"800 req/s on 2 cores needs <= 2.5), load generator {wsgi['tool_cores']:.2f} cores"
          f"{'' if load is _wrk else ' (not measured: in-process)'} of {cores}")
    print(f"api_candles_uncached: {uncached['rps']:.0f} req/s, p50 {uncached['p50']:.1f} ms, p99 {uncached['p99']:.1f} ms, "
          f"{_ms_per_request(uncached['server_cores'], uncached['rps'])} (same server, GOGO_API_CANDLES_CACHE_S=0: "
          f"every request reads Postgres)")
    print(f"api_candles_asgi: {asgi['rps']:.0f} req/s, p50 {asgi['p50']:.1f} ms, p99 {asgi['p99']:.1f} ms, "
          f"{_ms_per_request(asgi['server_cores'], asgi['rps'])} (uvicorn gogo.asgi, {WORKERS} workers, httptools, uvloop, "
          f"same cache: for comparison)")
    print(f"api_health_throughput: WSGI {wsgi['health_rps']:.0f} req/s, p99 {wsgi['health_p99']:.1f} ms, "
          f"{_ms_per_request(wsgi['health_cores'], wsgi['health_rps'])}; ASGI {asgi['health_rps']:.0f} req/s, "
          f"p99 {asgi['health_p99']:.1f} ms, {_ms_per_request(asgi['health_cores'], asgi['health_rps'])} "
          f"(baseline: no auth, no database)")
    print(f"api_bench_load_average: {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (1 min, on {cores} cores; "
          f"other processes share them: figures from a loaded machine are lower bounds)")


if __name__ == "__main__":
    if "--prepare" in sys.argv:
        _prepare()
    else:
        bench_api()
