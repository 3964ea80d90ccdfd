"""Websocket fan-out: ``CLIENTS`` dashboards on ``/ws/dashboard/`` receive one tick per second
through the real Redis channel layer.

The server is the production setup of ``gogo.asgi`` (uvicorn subprocess with WORKERS processes as
in bench.api, ``DJANGO_DEBUG=false``, channels-redis on ``REDIS_URL``, the database of
``GOGO_BENCH_WS_DATABASE_URL`` / ``DATABASE_URL``, created and migrated when missing). Every client
is a ``websockets`` connection in this one asyncio process, signed in with the session cookie of a
bench user and an allowed Origin, so it passes the same origin check, session auth and per-user
filtering as a browser. The publisher ``group_send``s a tick in the engine's shape (one ETHUSDT
candle and a 41-bucket COB frame, about 2 kB of JSON) to the ``dashboard`` group once a second for
``DURATION_S``, stamped with its send time and a sequence number. ``--layer pubsub`` compares
channels-redis's RedisPubSubChannelLayer (server and publisher) with the configured layer.

Printed: ``ws_fanout_latency`` p50 / p99 ms (send -> a client has parsed it; target p99 < 250 ms),
``ws_fanout_dropped`` (ticks a client never received, of clients x ticks; target 0), the connect
time of the clients and the machine's load average (the benchmark shares 2 cores with the server,
Redis and Postgres, and on a shared machine with other work). Figures only: nothing is asserted.

``python -m bench.ws`` runs it alone; ``python -m bench.ws --prepare`` is the setup step it runs in
a subprocess (migrate, bench user, session) and prints ``{"cookie": "<name>=<session key>"}``.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENTS, DURATION_S, SETTLE_S, WORKERS = 500, 30, 3, 2
GROUP = "dashboard"  # apps.pipeline.runner.GROUP
# uvicorn's websocket implementation, as in docker-compose.yml's web service and scripts/run.sh. Measured here
# (500 clients, 30 s, load < 0.9, 2026-12-05): "websockets-sansio" p99 208 / 240 / 148 / 215 / 160 ms (median
# 208), uvicorn's default legacy "websockets" 223 / 244 / 245 / 242 / 161 ms (median 242); run-to-run noise
# is as large as the difference. GOGO_BENCH_WS_IMPL=websockets compares.
WS_IMPL = "websockets-sansio"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/gogo_bench"


def _prepare() -> None:
    """(In a subprocess with the bench's environment.) Migrate, make the bench user, sign it in."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gogo.settings")
    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    user, _ = get_user_model().objects.get_or_create(username="bench-ws")
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    name = settings.SESSION_COOKIE_NAME
    print(json.dumps({"cookie": f"{name}={client.cookies[name].value}"}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _server(env: dict[str, str], workers: int, impl: str = WS_IMPL):
    """uvicorn on ``gogo.asgi`` (lifespan off, websocket implementation ``impl``) on a free port;
    yields the port once it listens."""
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", "gogo.asgi:application", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--lifespan", "off", "--ws", impl,
           "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {process.returncode}: {process.stderr.read()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("uvicorn did not listen within 60 s") from None
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tick(seq: int, now_ms: int) -> dict:
    """A tick shaped like ``apps.pipeline.stages.dashboard.Dashboard.tick``'s (no accounts: none are the bench user's)."""
    n, width, mid = 20, 1.0, 2681.25
    frame = {"ts": now_ms, "mid": mid, "first": mid - 0.25 - n * width, "width": width,
             "bid": [40_000.0 + 137.5 * i for i in range(n + 1)] + [0.0] * n,
             "ask": [0.0] * (n + 1) + [38_000.0 + 211.25 * i for i in range(n)],
             "imbalance": [1.0] * (n + 1) + [-1.0] * n, "imbalance_5": 0.0909,
             "ma": {"1s": 0.0909, "5s": 0.05, "15s": 0.02, "60s": 0.01}}
    candle = {"t": now_ms, "o": 2681.2, "h": 2681.5, "l": 2680.9, "c": 2681.3, "v": 3.25}
    return {"type": "tick", "ts": now_ms, "symbol": "ETHUSDT", "bench_seq": seq, "bench_sent": time.time(),
            "instruments": {"ETHUSDT": {"candle": candle, "frame": frame, "gaps": 0},
                            "BTCUSDT": {"candle": None, "frame": None, "gaps": 0}},
            "pivots": {"1m": {"t": now_ms - now_ms % 60_000, "p": 2681.0, "r1": 2682.0, "r2": 2683.0,
                              "s1": 2680.0, "s2": 2679.0}},
            "prediction": {"status": "predicted", "action": "HOLD", "confidence": 0.61, "reason": "",
                           "probs": {"BUY": 0.2, "SELL": 0.19, "HOLD": 0.61}},
            "completeness": {"overall": 1.0}, "decisions": [], "accounts": {}}


async def _client(url: str, headers: dict[str, str], received: list[list[tuple[float, str]]], opened: list) -> None:
    """One dashboard: keeps each message with its arrival time (parsed after the run: 500 real
    dashboards parse in 500 browsers, not one after the other in this process). Ends when its
    connection is closed (``_run`` closes them all). Compression is negotiated as a browser does
    (permessage-deflate)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    mine: list[tuple[float, str]] = []
    received.append(mine)
    async with connect(url, additional_headers=headers, max_queue=None, open_timeout=60) as ws:
        opened.append(ws)
        try:
            async for raw in ws:  # no per-message timeout: a wait_for would cost a task per message
                mine.append((time.time(), raw))
        except ConnectionClosed:
            pass


PUBSUB_SETTINGS = """from gogo.settings import *  # noqa: F401,F403
from gogo.settings import REDIS_URL
CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                              "CONFIG": {"hosts": [REDIS_URL]}}}
"""


def _publisher(layer: str, redis_url: str):
    """The channel layer the tick is published on: the server's (gogo.settings.base: RedisChannelLayer,
    same prefix and capacity) or, for the comparison, channels-redis's pub/sub layer."""
    if layer == "pubsub":
        from channels_redis.pubsub import RedisPubSubChannelLayer

        return RedisPubSubChannelLayer(hosts=[redis_url])
    from channels_redis.core import RedisChannelLayer

    return RedisChannelLayer(hosts=[{"address": redis_url}], capacity=1000, expiry=10)


async def _run(port: int, cookie: str, redis_url: str, clients: int, duration_s: int, layer_name: str) -> dict:
    url = f"ws://127.0.0.1:{port}/ws/dashboard/"
    headers = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"}
    received: list[list[tuple[float, str]]] = []
    opened: list = []
    started = time.perf_counter()
    tasks = []
    for start in range(0, clients, 50):  # in batches: a burst of 500 handshakes only measures the accept queue
        batch = [asyncio.create_task(_client(url, headers, received, opened))
                 for _ in range(min(50, clients - start))]
        tasks += batch
        while len(opened) < start + len(batch):
            failed = [t for t in tasks if t.done() and t.exception()]
            if failed:
                raise RuntimeError(f"a client could not connect: {failed[0].exception()!r}")
            await asyncio.sleep(0.05)
    connect_s = time.perf_counter() - started
    await asyncio.sleep(SETTLE_S)  # every consumer has joined the group
    layer = _publisher(layer_name, redis_url)
    next_at = time.monotonic()
    for seq in range(duration_s):
        await layer.group_send(GROUP, {"type": "tick", "payload": _tick(seq, int(time.time() * 1000))})
        next_at += 1.0
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.sleep(SETTLE_S)  # stragglers
    await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    close = getattr(layer, "close_pools", None)  # never flush(): it would empty the server's channels too
    if close is not None:
        await close()
    latencies, delivered = [], 0
    for mine in received:
        ticks: dict[int, float] = {}
        for arrived, raw in mine:
            message = json.loads(raw)
            if message.get("type") == "tick" and "bench_seq" in message:
                ticks.setdefault(message["bench_seq"], arrived - message["bench_sent"])
        latencies += ticks.values()
        delivered += len(ticks)
    return {"connect_s": connect_s, "latencies": sorted(latencies), "expected": clients * duration_s,
            "received": delivered}


def bench_ws(clients: int = CLIENTS, duration_s: int = DURATION_S, layer: str = "settings", workers: int = WORKERS) -> None:
    """Print the websocket fan-out figures (module docstring). ``layer="pubsub"`` runs the server and
    the publisher on channels-redis's RedisPubSubChannelLayer instead of the configured layer
    (``python -m bench.ws --layer pubsub``): one Redis message per group and process, not per client."""
    import numpy as np

    database = os.environ.get("GOGO_BENCH_WS_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis = os.environ.get("REDIS_URL", "")
    if not redis.startswith("redis"):
        print("ws_fanout_latency: skipped (REDIS_URL is not set: the fan-out goes through Redis)")
        return
    if database.startswith("postgres"):
        import psycopg

        from bench.api import _ensure_postgres_database

        try:
            _ensure_postgres_database(database)
        except psycopg.OperationalError as exc:
            print(f"ws_fanout_latency: skipped (Postgres unreachable: {type(exc).__name__})")
            return
    impl = os.environ.get("GOGO_BENCH_WS_IMPL", WS_IMPL)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "GOGO_AUTOSTART"))}
    env.update(DATABASE_URL=database, REDIS_URL=redis, DJANGO_DEBUG="false", DJANGO_SETTINGS_MODULE="gogo.settings",
               DJANGO_SECRET_KEY=secrets.token_urlsafe(50), LOG_LEVEL="WARNING")  # one key: the session is signed with it
    prepared = subprocess.run([sys.executable, "-m", "bench.ws", "--prepare"], cwd=ROOT, text=True,
                              capture_output=True, env=env)
    if prepared.returncode:
        raise RuntimeError(f"bench.ws --prepare failed: {prepared.stderr[-3000:]}")
    cookie = json.loads(prepared.stdout.strip().splitlines()[-1])["cookie"]
    with tempfile.TemporaryDirectory() as tmp:
        if layer == "pubsub":
            Path(tmp, "bench_ws_pubsub_settings.py").write_text(PUBSUB_SETTINGS)
            env = {**env, "DJANGO_SETTINGS_MODULE": "bench_ws_pubsub_settings",
                   "PYTHONPATH": os.pathsep.join(filter(None, [tmp, str(ROOT), env.get("PYTHONPATH")]))}
        with _server(env, workers, impl) as port:
            result = asyncio.run(_run(port, cookie, redis, clients, duration_s, layer))
    latencies_ms = np.asarray(result["latencies"]) * 1000
    p50, p99 = (np.percentile(latencies_ms, [50, 99]) if len(latencies_ms) else (float("nan"), float("nan")))
    dropped = result["expected"] - result["received"]
    name = "ws_fanout" if layer == "settings" else f"ws_fanout_{layer}"
    backend = "RedisPubSubChannelLayer" if layer == "pubsub" else "RedisChannelLayer (gogo.settings)"
    print(f"{name}_setup: {clients} clients (one asyncio process, websockets), uvicorn {workers} workers --ws {impl}, DEBUG off, "
          f"{backend}, 1 tick/s for {duration_s} s, {os.cpu_count()} cores shared by clients, server, Redis, Postgres")
    print(f"{name}_connect: {clients} clients in {result['connect_s']:.1f} s")
    worst = latencies_ms.max() if len(latencies_ms) else float("nan")
    print(f"{name}_latency: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms")
    print(f"{name}_dropped: {dropped} of {result['expected']} ticks")
    print(f"ws_bench_load_average: {os.getloadavg()[0]:.1f} (1 min, on {os.cpu_count()} cores: other processes share them)")


if __name__ == "__main__":
    if "--prepare" in sys.argv:
        _prepare()
    else:
        bench_ws(layer=sys.argv[sys.argv.index("--layer") + 1] if "--layer" in sys.argv else "settings")
