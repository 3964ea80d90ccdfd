"""COB engine figures beside the peers of ``shared/bench/peer_orderbook.py``, in one process.

On the recorded Binance spot BTCUSDT + ETHUSDT depth streams (2024-08-08/09, data README
section 1): first checks that our frames equal the peers' (same bucket edges, same USD sizes to
1e-9 relative, at every second the peer emits), then prints level-updates/s, best of 3, for
ours and each peer, apply only and the full pipeline (parse, sequence check, apply, per-second
frames with imbalance and moving averages), and the ratios. Input for ours: the raw messages as
bytes, as read from a socket or a file; the peers get the same lines as str (their own loader).
"""
from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from ml.market.cob_fast import FastCobEngine
from ml.market.heatmap import heatmap_matrix
from ml.market.recording import default_data_dir
from ml.pivots import williams_pivots

WIDTHS = {"BTCUSDT": 10.0, "ETHUSDT": 1.0}
RUNS = 3


def load_peer(data_dir: Path) -> ModuleType:
    """Import ``shared/bench/peer_orderbook.py`` by path (never copied into the repository)."""
    path = data_dir.parent / "bench" / "peer_orderbook.py"
    spec = importlib.util.spec_from_file_location("peer_orderbook", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.DATA = data_dir / "orderbook" / "binance_spot"  # its default is argv-relative
    return module


def _ours(data: dict, frames: bool, mode: str = "session") -> tuple[float, int, dict]:
    """Seconds, level updates and frame batches of one pass of our pipeline over both symbols."""
    engines = {}
    for symbol, (snap, _msgs) in data.items():
        engine = FastCobEngine(symbol, WIDTHS[symbol])
        engine.load_snapshot(snap)
        engines[symbol] = engine
    batches = {}
    t0 = time.perf_counter()
    for symbol, (_, msgs) in data.items():
        batches[symbol] = engines[symbol].run(msgs, mode=mode, frames=frames)
    elapsed = time.perf_counter() - t0
    return elapsed, sum(e.stats["level_updates"] for e in engines.values()), batches


def _peer_frames(peer: ModuleType, fn, data: dict) -> dict[str, list]:
    """Run one peer with bucketing on and record the buckets it builds at each second."""
    recorded: dict[str, list] = {}
    original = peer.buckets_from_sorted

    def recording(bids, asks, width):
        out = original(bids, asks, width)
        recorded.setdefault(current, []).append(out)
        return out

    peer.buckets_from_sorted = recording
    try:
        for current, (snap, diffs) in data.items():  # noqa: B007 (read by the closure)
            fn(current, snap, diffs, True)
    finally:
        peer.buckets_from_sorted = original
    return recorded


def check_equal(peer: ModuleType, peer_data: dict, ours: dict) -> dict[str, tuple[int, float]]:
    """Assert our peer-clock frames equal each peer's; returns {peer: (frames, max rel diff)}."""
    result = {}
    for name, fn in (("cryptofeed order-book", peer.run_cf), ("ccxt.pro", peer.run_ccxt)):
        theirs = _peer_frames(peer, fn, peer_data)
        frames, worst = 0, 0.0
        for symbol, batch in ours.items():
            got = theirs[symbol]
            assert len(got) == len(batch), f"{name} {symbol}: {len(got)} peer frames, ours {len(batch)}"
            bids = np.array([b for b, _ in got])
            asks = np.array([a for _, a in got])
            for mine, peer_side in ((batch.bid_usd, bids), (batch.ask_usd, asks)):
                np.testing.assert_allclose(mine, peer_side, rtol=1e-9, atol=0,
                                           err_msg=f"{name} {symbol}: frames differ")
                scale = np.maximum(np.abs(peer_side), 1e-300)
                worst = max(worst, float(np.max(np.abs(mine - peer_side) / scale)))
            frames += len(batch)
        result[name] = (frames, worst)
    return result


def _best(fn) -> tuple[float, int]:
    best = None
    for _ in range(RUNS):
        t, lv = fn()
        best = (t, lv) if best is None or t < best[0] else best
    return best


def bench_cob() -> None:
    """Print the equality check and the level-updates/s lines (module docstring)."""
    data_dir = default_data_dir()
    peer = load_peer(data_dir)
    peer_data = {s: peer.load(s) for s in peer.RUNS}
    data = {s: (snap.encode(), [d.encode() for d in diffs]) for s, (snap, diffs) in peer_data.items()}

    _, _, ours_peer_clock = _ours(data, True, mode="peer")
    checked = check_equal(peer, peer_data, ours_peer_clock)
    for name, (frames, worst) in checked.items():
        print(f"cob_frames_equal_peer: {frames} frames (peer {name}: equal, max relative difference {worst:.1e})")

    figures = {}
    for label, bucket in (("apply", False), ("pipeline", True)):
        t, lv = _best(lambda b=bucket: _ours(data, b)[:2])
        peers = {}
        for name, fn in (("ccxt.pro", peer.run_ccxt), ("cryptofeed order-book", peer.run_cf)):
            def run(fn=fn, b=bucket):
                tot_t, tot_lv = 0.0, 0
                for s, (snap, diffs) in peer_data.items():
                    pt, _, plv, _ = fn(s, snap, diffs, b)
                    tot_t += pt
                    tot_lv += plv
                return tot_t, tot_lv
            pt, plv = _best(run)
            peers[name] = plv / pt
        figures[label] = (lv / t, peers)
    for label, (ours, peers) in figures.items():
        what = "apply_only" if label == "apply" else "full_pipeline"
        peer_text = " ".join(f"(peer {name}: {v:,.0f} level-updates/s, ratio {ours / v:.1f}x)"
                             for name, v in peers.items())
        print(f"cob_{what}_level_updates_per_second: {ours:,.0f} level-updates/s {peer_text}")

    batches = _ours(data, True)[2]
    frames = {s: [b.frame(k) for k in range(len(b))] for s, b in batches.items()}
    bench_heatmap(frames["ETHUSDT"])
    bench_pivots(data_dir)
    bench_storage(frames)


def _best_seconds(fn, runs: int = 20) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_heatmap(frames: list) -> None:
    """Build time of the default heatmap (300 s x 21 buckets, imbalance, volume, spread)."""
    t = _best_seconds(lambda: heatmap_matrix(frames[-300:]))
    print(f"cob_heatmap_build_time: {t * 1e3:.2f} ms (300 s x 21 price buckets, uncached; cached: one dict lookup)")


def bench_pivots(data_dir: Path) -> None:
    """Williams pivots (5 levels) on 4 recorded candle series of 1,500 candles, every second."""
    import pandas as pd

    names = ("binance_spot_BTCUSDT_1m_20240726-20240825.csv.gz", "binance_spot_BTCUSDT_1h_20200511-20240508.csv.gz",
             "binance_spot_BTCUSDT_1d_20200511-20241205.csv", "binance_spot_ETHUSDT_1m_20240726-20240825.csv.gz")
    series = [pd.read_csv(data_dir / "ohlcv" / n).tail(1500) for n in names]
    arrays = [(df.high.to_numpy(), df.low.to_numpy()) for df in series]
    t = _best_seconds(lambda: [williams_pivots(h, lo, levels=5) for h, lo in arrays])
    print(f"pivots_time_per_second_of_data: {t * 1e3:.3f} ms (1,500 candles x 4 series: BTC 1m/1h/1d + ETH 1m, "
          f"5 levels; {t * 100:.3f}% of each second)")



def bench_storage(frames: dict[str, list]) -> None:
    """COB frames written per second into Postgres by COPY (inside a transaction rolled back)."""
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gogo.settings")
    django.setup()
    from django.db import DatabaseError, connection, transaction

    from apps.market.models import Instrument
    from apps.market.services import cob_frame_copy_many, cob_frame_upsert_many

    if connection.vendor != "postgresql":
        print("cob_storage_rows_per_second: skipped (DATABASE_URL is not Postgres; "
              "run `DATABASE_URL=postgres://... make bench`)")
        return
    n_rows = sum(len(f) for f in frames.values())
    results = {}
    try:
        for name, writer in (("copy", cob_frame_copy_many), ("orm bulk upsert", cob_frame_upsert_many)):
            best = float("inf")
            for run in range(RUNS):
                with transaction.atomic():
                    instruments = {s: Instrument.objects.create(venue="binance", symbol=f"BENCH{run}{s}", base="X",
                                                                quote="USDT") for s in frames}
                    t0 = time.perf_counter()
                    for symbol, rows in frames.items():
                        writer(instrument=instruments[symbol], frames=rows)
                    best = min(best, time.perf_counter() - t0)
                    transaction.set_rollback(True)
            results[name] = n_rows / best
    except DatabaseError as exc:
        print(f"cob_storage_rows_per_second: skipped (database not ready: {exc.__class__.__name__})")
        return
    copy, orm = results["copy"], results["orm bulk upsert"]
    print(f"cob_storage_rows_per_second: {copy:,.0f} rows/s ({n_rows} frames of 41 buckets by COPY; "
          f"ORM bulk upsert: {orm:,.0f} rows/s, ratio {copy / orm:.1f}x)")


if __name__ == "__main__":
    bench_cob()
