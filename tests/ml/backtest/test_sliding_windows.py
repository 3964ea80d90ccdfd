"""The fast path's chunked 1 s windows (ml.features.sliding) equal the rings' own windows, second
by second, through history at the start, short gaps and a gap longer than a window."""
import numpy as np

from ml.features.rings import CandleRing, FrameRing
from ml.features.sliding import SecondTimeline
from ml.market.events import Candle, CobFrame

T0 = 1_723_161_000_000


def candle(t: int, rng) -> Candle:
    low = 2600 + rng.random() * 5
    return Candle("ETHUSDT", "1s", t, low + 1, low + 2, low, low + rng.random(), rng.random() * 3)


def frame(t: int, rng) -> CobFrame:
    bid, ask = rng.random(41) * 1e5, rng.random(41) * 1e5
    return CobFrame("ETHUSDT", t, 2600.0, 2599.9, 2600.1, 1.0, 20, 2580.0, bid, ask, np.zeros(41), rng.random(),
                    {k: rng.random() for k in ("1s", "5s", "15s", "60s")})


def missing(i: int) -> bool:
    """Seconds without data: scattered ones and a 400 s hole (longer than the 300-row window)."""
    return i % 7 == 3 or 900 <= i < 1300


def test_every_chunked_window_equals_the_rings_window():
    rng = np.random.default_rng(7)
    candles, frames = CandleRing("1s", capacity=600), FrameRing(capacity=600)
    for i in range(-200, 0):  # history before the session, with its own holes
        if not missing(i + 1000):
            candles.upsert(candle(T0 + i * 1000, rng))
            frames.upsert(frame(T0 + i * 1000, rng))
    timelines = {"c": SecondTimeline(candles), "f": SecondTimeline(frames)}
    expected, chunk, checked = {}, [], 0
    for i in range(2000):
        ts = T0 + i * 1000
        if not missing(i):
            candles.upsert(candle(ts, rng))
            frames.upsert(frame(ts, rng))
        for timeline in timelines.values():
            timeline.record(ts)
        expected[ts] = {"c": candles.window(ts, 300), "f": frames.window(ts, 300)}
        chunk.append(ts)
        if len(chunk) == 512 or i == 1999:
            for timeline in timelines.values():
                timeline.build()
            for t in chunk:
                for name, timeline in timelines.items():
                    values, present = timeline.window(t, 300)
                    want_values, want_present = expected[t][name]
                    assert values.dtype == want_values.dtype and values.shape == want_values.shape
                    assert np.array_equal(values, want_values) and np.array_equal(present, want_present)
                    assert not values.flags.writeable  # shared between seconds: never modified
                    checked += 1
            for timeline in timelines.values():
                timeline.trim()
            chunk = []
    assert checked == 4000
