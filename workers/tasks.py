"""Celery autodiscovery entry point: import every task module."""
from workers.backtest import run_backtest  # noqa: F401
from workers.history import prune_inference_history  # noqa: F401
from workers.inference import run_inference  # noqa: F401
from workers.ingest import run_market_stream, run_replay_session, streams_watchdog  # noqa: F401
from workers.market import prune_cob_frames  # noqa: F401
from workers.scoring import check_model_alerts, score_outcomes, score_outcomes_sweep  # noqa: F401
from workers.training import fine_tune_model, train_model  # noqa: F401
