"""Look-ahead check (in the spirit of freqtrade's ``lookahead-analysis``): a decision at second s
must not change when the data after some t >= s is cut off. Pure comparison of decision logs.

A decision log maps second (ms since epoch) -> (action, confidence rounded to ``DIGITS``)."""
from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence

logger = logging.getLogger(__name__)

DIGITS = 9  # confidences equal to 1e-9 are the same decision; torch CPU inference is bit-reproducible


def cut_points(seconds: Sequence[int], samples: int, seed: int = 0) -> list[int]:
    """``samples`` distinct seconds drawn from ``seconds`` (seeded, sorted; all when fewer). Excludes
    the last second (cutting there truncates nothing)."""
    candidates = sorted(set(seconds))[:-1]
    if len(candidates) <= samples:
        return candidates
    return sorted(random.Random(seed).sample(candidates, samples))


def decision_changes(full: Mapping[int, tuple], truncated: Mapping[int, tuple], cut_ms: int) -> list[dict]:
    """Every second <= ``cut_ms`` whose decision differs between the full and the truncated run
    (a decision present in only one run counts): [{"ts", "full", "truncated"}] in time order."""
    keys = sorted(k for k in set(full) | set(truncated) if k <= cut_ms)
    return [{"ts": k, "full": full.get(k), "truncated": truncated.get(k)} for k in keys if full.get(k) != truncated.get(k)]
