"""Celery autodiscovery entry point: import every task module."""
from workers.ingest import run_replay_session  # noqa: F401
