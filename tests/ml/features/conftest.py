"""ml/ is pure Python + numpy + torch: its tests need no database, cache or Django."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _clean_session_state() -> None:
    """Overrides the suite-wide autouse fixture (tests/conftest.py) that resets Django's cache."""


@pytest.fixture(scope="session")
def eth_history() -> dict:
    """ETHUSDT 1m / 1h / 1d candle history (shared data, README section 3)."""
    from ml.training.cnn_train import default_training_history

    try:
        return default_training_history()
    except FileNotFoundError as exc:
        pytest.skip(f"shared data missing: {exc}")


@pytest.fixture(scope="session")
def derived_1s() -> dict:
    """1s candles built from the recorded spot trades (2024-08-08 23:54:16 -> 00:05:04 UTC)."""
    from ml.data.history import default_data_dir, load_ohlcv_csv

    folder = default_data_dir() / "ohlcv" / "derived"
    if not folder.is_dir():
        pytest.skip(f"shared data missing: {folder}")
    return {sym: load_ohlcv_csv(folder / f"binance_spot_{sym}_1s_20240808T2354-20240809T0005.csv")
            for sym in ("ETHUSDT", "BTCUSDT")}
