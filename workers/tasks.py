"""Celery autodiscovery entry point: import every task module."""
from workers.history import prune_inference_history  # noqa: F401
from workers.inference import run_inference  # noqa: F401
from workers.ingest import run_market_stream, run_replay_session, streams_watchdog  # noqa: F401
from workers.market import prune_cob_frames  # noqa: F401
from workers.training import train_model  # noqa: F401
