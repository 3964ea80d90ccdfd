"""Real 2025 candles of the data directory, loaded once per session."""
import pytest

from ml.data.history import load_history
from ml.market.recording import default_data_dir


@pytest.fixture(scope="session")
def candles_2025():
    """(ETHUSDT 1m/1h/1d frames, BTCUSDT 1m frames) of every history file."""
    eth, _ = load_history(default_data_dir(), "ETHUSDT")
    btc, _ = load_history(default_data_dir(), "BTCUSDT", ("1m",))
    return eth, btc
