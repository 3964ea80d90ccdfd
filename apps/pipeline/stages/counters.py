"""Per-instrument counters of one engine run, shared by the stages that count."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


@dataclass
class InstrumentCounters:
    """What one run did for one instrument. ``predictions`` / ``skipped_inferences`` count seconds
    (with / without a combined output); ``model_predictions`` counts per model;
    ``history_errors`` counts failed prediction writes; ``completeness_sum`` / ``_n`` give the mean
    overall completeness; ``sequence_gaps`` is the synchronizer's running total."""

    candles_1s: int = 0
    cob_frames: int = 0
    predictions: int = 0
    skipped_inferences: int = 0
    decisions: int = 0
    sequence_gaps: int = 0
    inference_failures: int = 0
    completeness_sum: float = 0.0
    completeness_n: int = 0
    model_predictions: dict[str, int] = field(default_factory=dict)
    history_errors: int = 0
    stream_gaps: int = 0
    candles_backfilled: int = 0
