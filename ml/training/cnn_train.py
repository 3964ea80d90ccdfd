"""Candle-history defaults that outlived the retired candle-only CNN trainer.

The live models (``ml/models/market.py`` families, trained by ``ml/training/live_train.py`` on
``ml/training/market_data.py``) read all of the candle history; these two names remain for the
look-ahead check and the backtest defaults, which still work on the freqtrade files of
2024-07-26 -> 2024-08-25 (1m), 2024 (1h) and 2020-2024 (1d).
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ml.data.history import history_files, load_ohlcv_csv
from ml.market.recording import default_data_dir

logger = logging.getLogger(__name__)

DEFAULT_TRAIN_END_MS = 1_723_158_000_000  # 2024-08-08 23:00:00 UTC: the replay session's hour starts


def default_training_history(data_dir: str | Path | None = None,
                             symbol: str = "ETHUSDT") -> dict[str, pd.DataFrame]:
    """Load the 1m, 1h and 1d candle history of ``symbol`` (see ml.data.history.history_files).

    Raises:
        FileNotFoundError: a history file is missing.
        ValueError: a file fails validation.
    """
    files = history_files(data_dir or default_data_dir(), symbol)
    return {tf: load_ohlcv_csv(path) for tf, path in files.items()}
