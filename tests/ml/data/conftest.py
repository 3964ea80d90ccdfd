"""ml/ is pure Python + numpy + torch: its tests need no database, cache or Django."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _clean_session_state() -> None:
    """Overrides the suite-wide autouse fixture (tests/conftest.py) that resets Django's cache."""
