"""Fixtures built from the recorded data (which the suite requires)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def derived_1s() -> dict:
    """1s candles built from the recorded spot trades (2024-08-08 23:54:16 -> 00:05:04 UTC)."""
    from ml.data.history import load_ohlcv_csv
    from ml.market.recording import default_data_dir

    folder = default_data_dir() / "ohlcv" / "derived"
    if not folder.is_dir():
        pytest.fail(f"shared data missing: {folder}")
    return {sym: load_ohlcv_csv(folder / f"binance_spot_{sym}_1s_20240808T2354-20240809T0005.csv")
            for sym in ("ETHUSDT", "BTCUSDT")}
