"""Model figures: BaseDataInput build, inference latency per model at batch 1 on 2 CPU threads,
throughput at batch 256, parameter counts, inference-history bytes per prediction.

Build: at a new second each call (cycling over the last 60 s, so the 1s and COB windows change and
their indicators/pivots are computed, while the 1m/1h/1d ones come from the value cache as on most
live seconds); the uncached line clears that cache first. Input: the real recorded data. The
1m/1h/1d rings hold the ETHUSDT history; the 1s and COB rings are filled by replaying the first
330 s of the 2024-08-08/09 spot session through MarketSession (the live code), so every
component is complete.
Models: the three market families (``ml.models.live.untrained``: default configs, seeded random
weights, the full cascade; latency does not depend on the weights), each run as the inference loop
runs them, in cascade order on one input with the earlier models' outputs of the same second.
Targets from issue 5: build p99 <= 2 ms, inference p99 <= 5 ms per model.
"""
from __future__ import annotations

import itertools
import json
import time

import numpy as np
import torch

from ml.data.history import frame_to_candles
from ml.features import base_input
from ml.features.base_input import build_base_data_input
from ml.features.package import pack_input
from ml.features.rings import CandleRing, FrameRing
from ml.market.recording import default_spot_session
from ml.market.replay import ReplayVenue
from ml.market.session import InstrumentSpec, MarketSession
from ml.models import live
from ml.models.specs import SPECS, parameter_count
from ml.training.cnn_train import default_training_history

SECONDS = 330
CALLS = 300


def _rings() -> tuple[dict, CandleRing, FrameRing, int]:
    session = MarketSession(ReplayVenue(default_spot_session()),
                            [InstrumentSpec("ETHUSDT", 1.0), InstrumentSpec("BTCUSDT", 10.0)])
    rings = {"1s": CandleRing("1s", 600)}
    reference, frames = CandleRing("1s", 600), FrameRing(600)
    ts = 0
    for i, second in enumerate(session.seconds()):
        if "ETHUSDT" in second.candles:
            rings["1s"].upsert(second.candles["ETHUSDT"])
        if "BTCUSDT" in second.candles:
            reference.upsert(second.candles["BTCUSDT"])
        if "ETHUSDT" in second.frames:
            frames.upsert(second.frames["ETHUSDT"])
        ts = second.ts
        if i + 1 >= SECONDS:
            break
    for tf, df in default_training_history().items():
        rings[tf] = CandleRing(tf, 600)
        rings[tf].extend(frame_to_candles(df[df["open_time"] <= ts].iloc[-600:], symbol="ETHUSDT", timeframe=tf))
    return rings, reference, frames, ts


def _percentiles(fn, calls: int = CALLS) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def _batch(model, inputs, size: int) -> tuple[dict, dict]:
    """The model's groups of ``inputs`` repeated ``size`` times, as its forward takes them."""
    values, mask = live.model_groups(model, inputs)
    return ({n: torch.from_numpy(np.repeat(v[None], size, axis=0)) for n, v in values.items()},
            {n: torch.full((size,), bool(m)) for n, m in mask.items()})


def _history_bytes(arrays: dict, output) -> int:
    """Bytes one prediction adds to the history: the compressed input package plus the stored
    output JSON (Postgres row and index overhead, ~100 bytes, not counted)."""
    details = output.to_dict()
    details.pop("hidden")
    return len(pack_input(arrays)) + len(json.dumps(details))


def bench_models() -> None:
    """Print ``name: value unit`` lines (module docstring)."""
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rings, reference, frames, ts = _rings()

        seconds = itertools.cycle(range(ts - 59_000, ts + 1000, 1000))  # a new 1s/COB window each call

        def build(derived: bool = True, at: int | None = None):
            return build_base_data_input(ts=at or next(seconds), symbol="ETHUSDT", reference_symbol="BTCUSDT",
                                         rings=rings, reference_ring=reference, frame_ring=frames, derived=derived)

        inputs = build(at=ts)
        print(f"base_input_completeness: {inputs.completeness()['overall']:.3f} ratio")
        p50, p99 = _percentiles(build)
        print(f"base_input_build_p50: {p50:.3f} ms")
        print(f"base_input_build_p99: {p99:.3f} ms")
        p50, p99 = _percentiles(lambda: build(derived=False))
        print(f"base_input_build_without_indicators_pivots_p99: {p99:.3f} ms")
        p50, p99 = _percentiles(lambda: (base_input._DERIVED_CACHE.clear(), build()))
        print(f"base_input_build_uncached_indicators_pivots_p99: {p99:.3f} ms")
        history_bytes = []
        for name, spec in SPECS.items():  # cascade order: each reads the outputs recorded before it
            model = live.untrained(name)
            print(f"{name}_parameters: {parameter_count(model)} count")
            p50, p99 = _percentiles(lambda m=model, s=spec: s.predict(m, inputs))
            print(f"{name}_inference_p50: {p50:.3f} ms")
            print(f"{name}_inference_p99: {p99:.3f} ms")
            torch.set_num_threads(1)  # what the engine uses for batch 1 (GOGO_INFERENCE_THREADS)
            p50, p99 = _percentiles(lambda m=model, s=spec: s.predict(m, inputs))
            torch.set_num_threads(2)
            print(f"{name}_inference_1thread_p50: {p50:.3f} ms")
            print(f"{name}_inference_1thread_p99: {p99:.3f} ms")
            x, m = _batch(model, inputs, 256)
            with torch.inference_mode():
                model(x, m)
                start = time.perf_counter()
                for _ in range(5):
                    model(x, m)
            print(f"{name}_throughput_batch256: {5 * 256 / (time.perf_counter() - start):.0f} samples/s")
            output = spec.predict(model, inputs)
            size = _history_bytes(spec.package(model, inputs), output)
            live.record_output(inputs, output)
            history_bytes.append(size)
            print(f"{name}_history_bytes_per_prediction: {size} bytes")
        print(f"history_bytes_per_second_all_models: {sum(history_bytes)} bytes")
    finally:
        torch.set_num_threads(prev_threads)
