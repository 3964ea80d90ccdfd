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

    return default_training_history()
