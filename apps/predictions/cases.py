"""Collect a model's training cases from the database (definitions in ml/training/cases.py):
scored predictions with their stored input packages, annotations (input rebuilt at the entry
second from stored candles and frames), and, for the DQN, paper-trade round trips."""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import numpy as np

from apps.market.convert import datetime_to_ms, ms_to_datetime
from apps.market.models import Instrument
from apps.predictions.models import PredictionOutcome
from ml.features.base_input import InputError
from ml.features.package import unpack_input
from ml.models.specs import spec_for
from ml.outcomes import BPS, HORIZONS_MS, LABEL_BAND
from ml.training.cases import (
    TrainingCases,
    cases_from_annotations,
    cases_from_round_trips,
    cases_from_scored,
    complete_enough,
    round_trips,
)

logger = logging.getLogger(__name__)


def label_horizon(model_name: str, model: Any) -> str:
    """The outcome horizon matching a model's training label: ``horizon_min`` minutes (cnn, dqn)
    or ``label_horizon_s`` seconds (transformer), the nearest of 1m/5m/15m/60m."""
    return horizon_for_config({k: getattr(model.config, k, None)
                               for k in ("horizon_min", "trade_horizon_min", "label_horizon_s")})


def horizon_for_config(config: dict) -> str:
    """:func:`label_horizon` from a checkpoint's stored config dict (``ModelCheckpoint.config``):
    ``horizon_min``, else ``trade_horizon_min`` (the market families' trade horizon), else
    ``label_horizon_s``, else 5 minutes; the nearest of 1m/5m/15m/60m."""
    minutes = config.get("horizon_min") or config.get("trade_horizon_min")
    ms = minutes * 60_000 if minutes else (config.get("label_horizon_s") or 300) * 1000
    return min(HORIZONS_MS, key=lambda h: abs(HORIZONS_MS[h] - ms))


def _fits(package: dict[str, np.ndarray], expected: dict[str, tuple]) -> bool:
    return set(package) == set(expected) and all(package[k].shape == s for k, s in expected.items())


def _expected(model_name: str, model: Any, instrument: Instrument, reference: Instrument, ts_ms: int) -> dict[str, tuple]:
    """Keys and shapes of the model's input package (from an empty input of the layout)."""
    from ml.features.base_input import build_base_data_input

    empty = build_base_data_input(ts=ts_ms // 1000 * 1000, symbol=instrument.symbol, reference_symbol=reference.symbol,
                                  rings={}, reference_ring=None, frame_ring=None, derived=False)
    return {k: v.shape for k, v in spec_for(model_name).package(model, empty).items()}


def training_cases_collect(*, model_name: str, model: Any, instrument: Instrument, reference: Instrument, start_ms: int,
                           end_ms: int, limit: int = 5000, min_completeness: float = 0.9) -> TrainingCases:
    """Every training case of ``model_name`` with its input second in ``[start_ms, end_ms)``:
    the newest ``limit`` scored predictions of its live checkpoints at the model's label horizon
    (a shadow's calls on the same seconds would repeat their inputs), every annotation of the
    instrument, and (dqn) every paper round trip whose first fill's decision links a prediction
    with a fitting input package. Cases below ``min_completeness`` are left out. Time order.

    Outcomes are NET: each case's rewards are the bps of acting on it after
    ``RegistrySettings.round_trip_cost_bps`` (fees both ways plus the spread), half per side;
    paper round trips carry their real fees.

    Raises ValueError when there is no case at all."""
    from apps.predictions.selectors import registry_settings_get

    fee = registry_settings_get().round_trip_cost_bps / 2 / BPS  # per side: the rewards are net of a round trip
    expected = _expected(model_name, model, instrument, reference, start_ms)
    parts = [_scored(model_name, model, instrument, start_ms, end_ms, limit, expected, min_completeness, fee),
             _annotations(model_name, model, instrument, reference, start_ms, end_ms, expected, min_completeness, fee)]
    if model_name == "dqn":
        parts.append(_paper(instrument, start_ms, end_ms, expected, min_completeness))
    cases = TrainingCases.concat(parts)
    logger.info("training cases %s %d..%d: %s", model_name, start_ms, end_ms, cases.counts())
    return cases


def _scored(model_name: str, model: Any, instrument: Instrument, start_ms: int, end_ms: int, limit: int,
            expected: dict[str, tuple], minimum: float, fee: float) -> TrainingCases:
    rows = (PredictionOutcome.objects.filter(
        instrument=instrument, model_name=model_name, shadow=False, horizon=label_horizon(model_name, model),
        ts_event__gte=ms_to_datetime(start_ms), ts_event__lt=ms_to_datetime(end_ms),
        prediction__input_package__isnull=False)
        .order_by("-ts_event").values_list("ts_event", "realized_return", "prediction__input_package")[:limit])
    packages, times, returns = [], [], []
    for ts_event, realized, blob in reversed(list(rows)):
        package = unpack_input(blob)
        if _fits(package, expected) and complete_enough(package, minimum):
            packages.append(package)
            times.append(datetime_to_ms(ts_event))
            returns.append(realized)
    threshold = getattr(model.config, "label_threshold", LABEL_BAND)
    return cases_from_scored(packages, np.array(times, dtype=np.int64), np.array(returns), threshold=threshold, fee=fee)


def _annotations(model_name: str, model: Any, instrument: Instrument, reference: Instrument, start_ms: int, end_ms: int,
                 expected: dict[str, tuple], minimum: float, fee: float) -> TrainingCases:
    from apps.annotations.selectors import annotation_list
    from apps.predictions.inference import inference_input_from_db

    packages, times, sides, entries, exits = [], [], [], [], []
    for a in annotation_list(instrument=instrument, start=ms_to_datetime(start_ms), end=ms_to_datetime(end_ms)):
        ts = datetime_to_ms(a.entry_time) // 1000 * 1000 - 1000  # the last second closed at the entry
        try:
            inputs = inference_input_from_db(instrument=instrument, reference=reference, ts_ms=ts)
        except InputError as exc:
            logger.warning("annotation %s: no input at its entry: %s", a.pk, exc)
            continue
        package = spec_for(model_name).package(model, inputs)
        if not (_fits(package, expected) and complete_enough(package, minimum)):
            continue
        packages.append(package)
        times.append(ts)
        sides.append(a.side)
        entries.append(float(a.entry_price))
        exits.append(float(a.exit_price))
    return cases_from_annotations(packages, np.array(times, dtype=np.int64), sides, np.array(entries), np.array(exits),
                                  fee=fee)


def _paper(instrument: Instrument, start_ms: int, end_ms: int, expected: dict[str, tuple], minimum: float) -> TrainingCases:
    from apps.trading.models import Fill, TradingAccount

    fills = (Fill.objects.filter(order__instrument=instrument, order__account__mode=TradingAccount.Mode.PAPER,
                                 ts_event__gte=ms_to_datetime(start_ms), ts_event__lt=ms_to_datetime(end_ms))
             .order_by("ts_event", "order_id", "seq")
             .values_list("order__account_id", "order__side", "quantity", "price", "fee", "ts_event",
                          "order__decision__prediction__input_package"))
    by_account: dict[int, list] = defaultdict(list)
    for row in fills:
        by_account[row[0]].append(row)
    packages, trips = [], []
    for rows in by_account.values():
        sides = np.array([1 if r[1] == "BUY" else -1 for r in rows])
        found = round_trips(sides, np.array([float(r[2]) for r in rows]), np.array([float(r[3]) for r in rows]),
                            np.array([float(r[4]) for r in rows]), np.array([datetime_to_ms(r[5]) for r in rows]))
        for trip in found:
            blob = rows[trip.first_index][6]
            package = unpack_input(blob) if blob else None
            if package is not None and _fits(package, expected) and complete_enough(package, minimum):
                packages.append(package)
                trips.append(trip)
    return cases_from_round_trips(packages, trips)
