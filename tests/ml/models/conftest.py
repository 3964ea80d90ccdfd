"""Fixtures built from the recorded data (which the suite requires)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def live_input():
    """BaseDataInput at 2024-08-08 23:59:59 UTC from the recorded ETHUSDT 1m/1h/1d history."""
    from ml.data.history import frame_to_candles
    from ml.features.base_input import build_base_data_input
    from ml.features.rings import CandleRing
    from ml.training.cnn_train import default_training_history

    try:
        history = default_training_history()
    except FileNotFoundError as exc:
        pytest.fail(f"shared data missing: {exc}")
    ts = 1_723_161_599_000
    rings = {}
    for tf, df in history.items():
        rings[tf] = CandleRing(tf, capacity=600)
        rows = df[df["open_time"] <= ts].iloc[-600:]
        rings[tf].extend(frame_to_candles(rows, symbol="ETHUSDT", timeframe=tf))
    return build_base_data_input(ts=ts, symbol="ETHUSDT", reference_symbol="BTCUSDT", rings=rings,
                                 reference_ring=None, frame_ring=None, last_outputs={})
