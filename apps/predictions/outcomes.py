"""Outcome scoring: every prediction's 1m/5m/15m/60m horizons, once the future price is stored.

Definitions (realized simple return, direction label with the CNN's 0.2 % fee band, correct,
PnL in bps after fees, Brier score) are in :mod:`ml.outcomes`; this module reads the unscored
predictions and the candles in bulk and writes ``PredictionOutcome`` rows with
``INSERT ... ON CONFLICT DO NOTHING`` on (prediction, horizon), so re-running is harmless and two
workers never write a row twice.

Callers: ``workers.scoring.score_outcomes`` deferred by the horizon after inference
(:func:`outcome_schedule`, throttled) and the beat sweep every minute
(``workers.scoring.score_outcomes_sweep``).
"""
from __future__ import annotations

import logging
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Exists, OuterRef

from apps.market.convert import ms_to_datetime, to_decimal
from apps.market.models import Candle, Instrument
from apps.predictions.models import Prediction, PredictionOutcome
from ml.outcomes import ACTIONS, HORIZONS_MS, MINUTE_MS, SECOND_MS, PriceSeries, score_predictions

logger = logging.getLogger(__name__)

BATCH = 20_000  # predictions per horizon per round trip
DEFAULT_LOOKBACK = timedelta(days=7)  # as the default inference-history retention
SCHEDULE_THROTTLE_S = 10
INLINE_LIMIT = 2000  # per horizon and minute in the embedded mode (~0.6 s at the measured rate)
_ACTION_INDEX = {a: i for i, a in enumerate(ACTIONS)}


def price_until_ms(*, instrument: Instrument) -> int | None:
    """The newest close instant (ms) of a stored 1 s or 1 m candle of ``instrument``: prices are
    known up to it. None when the instrument has no such candle."""
    ends = []
    for timeframe, period in (("1s", SECOND_MS), ("1m", MINUTE_MS)):
        newest = (Candle.objects.filter(instrument=instrument, timeframe=timeframe).order_by("-open_time")
                  .values_list("open_time", flat=True).first())
        if newest is not None:
            ends.append(int(newest.timestamp() * 1000) + period)
    return max(ends) if ends else None


def _prices(instrument: Instrument, start_ms: int, end_ms: int) -> PriceSeries:
    """1 s and 1 m closes whose close instant lies in ``[start_ms, end_ms]``, in one query."""
    rows = (Candle.objects.filter(instrument=instrument, timeframe__in=("1s", "1m"),
                                  open_time__gte=ms_to_datetime(start_ms - MINUTE_MS),
                                  open_time__lt=ms_to_datetime(end_ms))
            .values_list("timeframe", "open_time", "close"))
    parts: dict[str, tuple[list, list]] = {"1s": ([], []), "1m": ([], [])}
    for timeframe, open_time, close in rows.iterator(chunk_size=10_000):
        times, closes = parts[timeframe]
        times.append(int(open_time.timestamp() * 1000))
        closes.append(float(close))
    return PriceSeries.from_open_times(parts["1s"][0], parts["1s"][1], parts["1m"][0], parts["1m"][1])


def _pending(instrument: Instrument, horizon: str, until_ms: int, after_ms: int, lookback_start,
             size: int) -> list[tuple]:
    """Up to ``size`` unscored predicted rows at ``horizon`` whose end instant is <= ``until_ms``,
    with ts_event > ``after_ms``, oldest first."""
    latest = ms_to_datetime(until_ms - HORIZONS_MS[horizon] - SECOND_MS)
    scored = PredictionOutcome.objects.filter(prediction=OuterRef("pk"), horizon=horizon)
    qs = (Prediction.objects.filter(instrument=instrument, status=Prediction.Status.PREDICTED,
                                    ts_event__gt=max(ms_to_datetime(after_ms), lookback_start), ts_event__lte=latest,
                                    prob_buy__isnull=False)
          .exclude(action="").filter(~Exists(scored)).order_by("ts_event")
          .values_list("pk", "model_name", "ts_event", "action", "prob_buy", "prob_sell", "prob_hold", "confidence",
                       "shadow"))
    return list(qs[:size])


def prediction_outcomes_score(*, instrument: Instrument, until_ms: int | None = None,
                              horizons: tuple[str, ...] = tuple(HORIZONS_MS),
                              lookback: timedelta = DEFAULT_LOOKBACK, limit: int | None = None) -> dict[str, int]:
    """Score every unscored prediction of ``instrument`` whose horizon has ended by ``until_ms``
    (ms; default: the newest stored 1 s / 1 m candle close, :func:`price_until_ms`).

    Only predictions with ``ts_event`` within ``lookback`` of the instrument's newest prediction
    (or of ``until_ms`` if earlier) are considered, so a prediction whose end price is missing (a
    data gap) stops being re-read after a while. ``limit``: at most this many predictions per
    horizon (oldest first; the rest at the next call).

    Returns:
        horizon -> outcomes scored by this call (a row another worker wrote in the meantime is
        skipped by ON CONFLICT but still counted), plus "unknown": predictions due but without a
        stored start or end price.

    Raises:
        KeyError: an unknown horizon (see ml.outcomes.HORIZONS_MS).
    """
    until_ms = price_until_ms(instrument=instrument) if until_ms is None else until_ms
    counts = {h: 0 for h in horizons} | {"unknown": 0}
    if until_ms is None:
        return counts
    newest = (Prediction.objects.filter(instrument=instrument).order_by("-ts_event")
              .values_list("ts_event", flat=True).first())
    if newest is None:
        return counts
    lookback_start = min(newest, ms_to_datetime(until_ms)) - lookback
    for horizon in horizons:
        h_ms, after_ms = HORIZONS_MS[horizon], -1
        size = min(BATCH, limit or BATCH)
        while rows := _pending(instrument, horizon, until_ms, after_ms, lookback_start, size):
            ts = np.fromiter((int(r[2].timestamp() * 1000) for r in rows), dtype=np.int64, count=len(rows))
            full = len(rows) == size
            if full and ts[0] != ts[-1]:  # the batch may cut a second: that second goes whole into the next one
                keep = int(np.searchsorted(ts, ts[-1]))
                rows, ts = rows[:keep], ts[:keep]
            prices = _prices(instrument, int(ts[0]) + SECOND_MS - 60_000, int(ts[-1]) + SECOND_MS + h_ms + 1)
            written, unknown = _write(instrument, horizon, rows, ts, prices)
            counts[horizon] += written
            counts["unknown"] += unknown
            after_ms = int(ts[-1])
            if not full or (limit and counts[horizon] + counts["unknown"] >= limit):
                break
    if any(counts.values()):
        logger.info("outcomes %s until %d: %s", instrument.symbol, until_ms, counts)
    return counts


def _write(instrument: Instrument, horizon: str, rows: list[tuple], ts: np.ndarray, prices: PriceSeries) -> tuple[int, int]:
    actions = np.fromiter((_ACTION_INDEX[r[3]] for r in rows), dtype=np.int64, count=len(rows))
    probs = np.array([r[4:7] for r in rows], dtype=np.float64)  # (N, 3) ACTIONS order
    s = score_predictions(ts, actions, probs, HORIZONS_MS[horizon], prices)
    idx = np.flatnonzero(s.known)
    if len(idx):
        kept = [rows[i] for i in idx]
        confidence = np.array([r[7] for r in kept], dtype=np.float64)  # None -> NaN
        confidence = np.where(np.isnan(confidence), probs[idx].max(axis=1), confidence)
        columns = {
            "prediction_id": [r[0] for r in kept], "horizon": [horizon] * len(idx),
            "instrument_id": [instrument.pk] * len(idx), "model_name": [r[1] for r in kept],
            "ts_event": [r[2] for r in kept], "shadow": [r[8] for r in kept], "action": [r[3] for r in kept],
            "confidence": confidence.tolist(),
            "price_start": [to_decimal(p) for p in s.price_start[idx]], "price_end": [to_decimal(p) for p in s.price_end[idx]],
            "realized_return": s.realized_return[idx].tolist(), "label": [ACTIONS[k] for k in s.label[idx]],
            "correct": s.correct[idx].tolist(), "pnl_bps": s.pnl_bps[idx].tolist(), "brier": s.brier[idx].tolist()}
        with transaction.atomic():
            if connection.vendor == "postgresql":
                _insert_unnest(columns)
            else:
                objs = [PredictionOutcome(**{k: v[i] for k, v in columns.items()}) for i in range(len(idx))]
                PredictionOutcome.objects.bulk_create(objs, ignore_conflicts=True, batch_size=5_000)
    return len(idx), int((~s.known).sum())


_COLUMNS = (("prediction_id", "bigint"), ("horizon", "text"), ("instrument_id", "bigint"), ("model_name", "text"),
            ("ts_event", "timestamptz"), ("shadow", "boolean"), ("action", "text"), ("confidence", "float8"),
            ("price_start", "numeric"),
            ("price_end", "numeric"), ("realized_return", "float8"), ("label", "text"), ("correct", "boolean"),
            ("pnl_bps", "float8"), ("brier", "float8"))


def _insert_unnest(columns: dict[str, list]) -> None:
    """Postgres: one ``INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING`` (the ORM's
    bulk_create spends most of the scoring time building one placeholder per value)."""
    unnest = ", ".join(f"%s::{t}[]" for _, t in _COLUMNS)
    sql = (f"INSERT INTO {PredictionOutcome._meta.db_table} ({', '.join(c for c, _ in _COLUMNS)}, scored_at) "
           f"SELECT *, now() FROM unnest({unnest}) ON CONFLICT DO NOTHING")
    with connection.cursor() as cursor:
        cursor.execute(sql, [columns[c] for c, _ in _COLUMNS])


def outcome_schedule(*, instrument_id: int, ts_event_ms: int) -> int:
    """Live use: enqueue ``workers.scoring.score_outcomes`` once per horizon, ``countdown`` =
    horizon + 2 s after the prediction's second, at most once per instrument every
    SCHEDULE_THROTTLE_S seconds (a cache ``add`` claim), so a prediction per second costs
    0.4 tasks/s. Returns how many tasks were enqueued. A broker error is logged, never raised.

    Embedded (tasks run eagerly, no beat process): instead, the due predictions are scored in
    this process at most once a minute per instrument."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        try:
            if cache.add(f"gogo:scoring:inline:{instrument_id}", ts_event_ms, 60):
                prediction_outcomes_score(instrument=Instrument.objects.get(pk=instrument_id), limit=INLINE_LIMIT)
        except Exception:  # scoring must never stop inference
            logger.exception("outcome scoring in process failed")
        return 0
    from workers.scoring import score_outcomes

    sent = 0
    try:
        if not cache.add(f"gogo:scoring:scheduled:{instrument_id}", ts_event_ms, SCHEDULE_THROTTLE_S):
            return 0
        for horizon, h_ms in HORIZONS_MS.items():
            score_outcomes.apply_async((instrument_id,), {"horizons": [horizon]}, countdown=h_ms / 1000 + 2)
            sent += 1
    except Exception:  # a cache or broker outage must not stop inference; the beat sweep catches up
        logger.exception("outcome scoring: could not enqueue (%d of %d sent)", sent, len(HORIZONS_MS))
    return sent
