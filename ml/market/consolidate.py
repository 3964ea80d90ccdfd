"""Consolidate one instrument's COB frames from several venues into one frame.

Every venue's frame uses the same bucket grid family (``ml.market.cob``): edges at multiples of
the width, so bucket ``i`` of a frame is the absolute price bucket with key
``k = round(first_bucket_price / width) + i``. Frames of different venues are therefore summed by
key, never by index, even when their mids (and so their grids) differ by a few buckets.

Consolidated grid: centred on the bucket of the consolidated mid, the mean of the fresh venues'
mids (each venue's own ``(best_bid + best_ask) / 2``); ``best_bid`` / ``best_ask`` are the best
across venues (they may cross between venues; the mid does not depend on that). A venue adds to a
consolidated bucket only if that bucket is inside its own +-N grid: ``coverage`` counts the venues
per bucket, so edge buckets of venues whose mids differ are visibly partial.

Stale venues: a venue whose latest frame is older than ``stale_after_ms`` at ``now_ms`` is left out
of every sum and named in ``stale_venues`` (with the age in ``ages_ms``).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ml.market.cob import imbalance, imbalance_around_mid
from ml.market.events import CobFrame

logger = logging.getLogger(__name__)

DEFAULT_STALE_AFTER_MS = 3_000


class NoFreshVenue(ValueError):
    """Every venue's frame is stale (or none was given): there is nothing to consolidate."""


@dataclass(slots=True)
class ConsolidatedFrame:
    """One instrument's COB across venues at ``frame.ts``.

    ``frame``: the summed :class:`CobFrame` (``symbol``, USD per bucket, imbalance, imbalance_5;
    MAs empty: feed it to ``ImbalanceMA`` like any frame). ``venues``: venues summed;
    ``stale_venues``: venues dropped as stale; ``ages_ms``: age of each venue's frame at
    ``now_ms``. ``venue_share[v]``: shape (2N+1,), venue v's part of each bucket's bid + ask USD
    (0 where the bucket is empty); ``venue_depth_share[v]``: v's part of all USD in the grid.
    ``coverage``: (2N+1,) int, venues whose own grid holds the bucket.
    """

    frame: CobFrame
    venues: tuple[str, ...]
    stale_venues: tuple[str, ...]
    ages_ms: dict[str, int]
    venue_share: dict[str, np.ndarray] = field(default_factory=dict)
    venue_depth_share: dict[str, float] = field(default_factory=dict)
    coverage: np.ndarray | None = None


def consolidate(frames: Mapping[str, CobFrame], now_ms: int,
                stale_after_ms: int = DEFAULT_STALE_AFTER_MS) -> ConsolidatedFrame:
    """Sum the latest frame of each venue per price bucket (module docstring).

    Args:
        frames: venue name -> that venue's latest frame of one instrument (same width and N).
        now_ms: the consolidation time (ms); the result's ``frame.ts`` is ``now_ms``'s second.
        stale_after_ms: a frame with ``now_ms - ts > stale_after_ms`` is dropped (>= 0).

    Raises:
        ValueError: frames of different widths / N / symbols, or a negative ``stale_after_ms``.
        NoFreshVenue: no venue is fresh.
    """
    if stale_after_ms < 0:
        raise ValueError(f"stale_after_ms must be >= 0, got {stale_after_ms!r}")
    shapes = {(f.bucket_width, f.n_buckets, f.symbol) for f in frames.values()}
    if len(shapes) > 1:
        raise ValueError(f"frames must share symbol, bucket width and N, got {sorted(shapes)}")
    ages = {v: now_ms - f.ts for v, f in frames.items()}
    fresh = {v: f for v, f in frames.items() if ages[v] <= stale_after_ms}
    stale = tuple(v for v in frames if v not in fresh)
    if stale:
        logger.info("consolidation at %d drops stale venues %s", now_ms, ", ".join(stale))
    if not fresh:
        raise NoFreshVenue(f"no fresh venue at {now_ms} (ages {ages} ms > {stale_after_ms})")
    width, n, symbol = next(iter(shapes))
    n_total = 2 * n + 1
    mid = sum(f.mid for f in fresh.values()) / len(fresh)
    key0 = math.floor(mid / width) - n
    bid, ask, coverage = np.zeros(n_total), np.zeros(n_total), np.zeros(n_total, dtype=np.int64)
    per_venue: dict[str, np.ndarray] = {}
    for venue, f in fresh.items():
        vb, va, covered = _on_grid(f, key0, n_total)
        bid += vb
        ask += va
        coverage += covered
        per_venue[venue] = vb + va
    total = bid + ask
    grand = float(total.sum())
    frame = CobFrame(
        symbol=symbol, ts=now_ms - now_ms % 1000, mid=mid,
        best_bid=max(f.best_bid for f in fresh.values()), best_ask=min(f.best_ask for f in fresh.values()),
        bucket_width=width, n_buckets=n, first_bucket_price=key0 * width, bid_usd=bid, ask_usd=ask,
        imbalance=imbalance(bid, ask), imbalance_5=imbalance_around_mid(bid, ask, n))
    shares = {v: np.divide(d, total, out=np.zeros(n_total), where=total > 0) for v, d in per_venue.items()}
    depth_shares = {v: (float(d.sum()) / grand if grand > 0 else 0.0) for v, d in per_venue.items()}
    return ConsolidatedFrame(frame=frame, venues=tuple(fresh), stale_venues=stale, ages_ms=ages,
                             venue_share=shares, venue_depth_share=depth_shares, coverage=coverage)


def _on_grid(f: CobFrame, key0: int, n_total: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Venue frame ``f`` moved onto the grid whose bucket 0 has key ``key0``: bid, ask, covered."""
    shift = round(f.first_bucket_price / f.bucket_width) - key0  # f's bucket j is grid bucket j + shift
    bid, ask, covered = np.zeros(n_total), np.zeros(n_total), np.zeros(n_total, dtype=np.int64)
    lo, hi = max(0, shift), min(n_total, n_total + shift)
    if lo < hi:
        bid[lo:hi] = f.bid_usd[lo - shift:hi - shift]
        ask[lo:hi] = f.ask_usd[lo - shift:hi - shift]
        covered[lo:hi] = 1
    return bid, ask, covered
