"""Session state shared by the web process and the workers, kept in the cache (Redis when set).

Keys: ``gogo:session`` holds {state, speed, started_at, ts, first_ts, error}; ``gogo:session:stop``
asks the running session to stop at its next second.
"""
from __future__ import annotations

import time

from django.core.cache import cache

STATE_KEY = "gogo:session"
STOP_KEY = "gogo:session:stop"
TIMEOUT = 24 * 3600


def parse_speed(value: str | float | None) -> float | None:
    """'max' -> None (as fast as the CPU allows); a positive number -> that multiple of real time.

    Raises ValueError naming the bad value."""
    if value is None or str(value).lower() == "max":
        return None
    speed = float(value)
    if not speed > 0:
        raise ValueError(f"speed must be > 0 or 'max', got {value!r}")
    return speed


def session_state() -> dict:
    return cache.get(STATE_KEY) or {"state": "idle"}


def session_set(**fields) -> dict:
    state = {**session_state(), **fields}
    cache.set(STATE_KEY, state, TIMEOUT)
    return state


def session_claim(speed: float | None) -> bool:
    """Mark a session as starting unless one is running; returns False when one already runs."""
    if session_state().get("state") in ("starting", "running"):
        return False
    cache.delete(STOP_KEY)
    session_set(state="starting", speed=speed, started_at=time.time(), error="", ts=None, first_ts=None)
    return True


def session_request_stop() -> None:
    cache.set(STOP_KEY, True, TIMEOUT)


def session_stop_requested() -> bool:
    return bool(cache.get(STOP_KEY))


def session_speed() -> float | None:
    return session_state().get("speed")
