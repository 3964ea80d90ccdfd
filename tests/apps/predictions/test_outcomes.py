"""Outcome scoring at each horizon (1 s and 1 m prices), idempotency, the metrics selectors, the
Celery tasks and the beat schedule."""
from __future__ import annotations

import time
from decimal import Decimal

import numpy as np
import pytest

from apps.market.convert import ms_to_datetime
from apps.market.models import Candle, Instrument
from apps.predictions import services
from apps.predictions.metrics import learning_summary, outcome_calibration, outcome_metrics
from apps.predictions.models import Prediction, PredictionOutcome
from apps.predictions.outcomes import prediction_outcomes_score, price_until_ms
from ml.models.output import ModelOutput

pytestmark = pytest.mark.django_db
T0 = 1_893_456_000_000  # 2030-01-01 00:00 UTC: after every recorded candle
TS = T0 + 59_000  # the prediction's second; its input closes at T0 + 60 s, a minute boundary


@pytest.fixture
def eth():
    return Instrument.objects.get(venue="binance", symbol="ETHUSDT")


def _candles(instrument, timeframe: str, open_times: list[int], closes: list[float]) -> None:
    Candle.objects.bulk_create([
        Candle(instrument=instrument, timeframe=timeframe, open_time=ms_to_datetime(t), open=Decimal(repr(c)),
               high=Decimal(repr(c)), low=Decimal(repr(c)), close=Decimal(repr(c)), volume=Decimal(1))
        for t, c in zip(open_times, closes, strict=True)])


def _predict(instrument, model_name: str, ts: int, probs: tuple[float, float, float]) -> Prediction:
    output = ModelOutput.from_probs(model_name=model_name, model_version="t", probs=np.array(probs))
    return services.prediction_record(instrument=instrument, model_name=model_name, checkpoint=None, ts_event_ms=ts,
                                      completeness={"overall": 1.0}, output=output)


@pytest.fixture
def market(eth):
    """1 s closes at 100 for 400 s (100.5 at +2 min, 99.5 at +6 min), 1 m closes at 100 for 70 min
    (100.1 at +16 min, 103 at +61 min), and three calls at TS."""
    ones = [T0 + k * 1000 for k in range(400)]
    closes = [100.0] * 400
    closes[119] = 100.5  # closes at T0 + 120 s = TS + 1 s + 1 min
    closes[359] = 99.5  # closes at TS + 1 s + 5 min
    _candles(eth, "1s", ones, closes)
    minutes = [T0 + m * 60_000 for m in range(70)]
    m_closes = [100.0] * 70
    m_closes[15] = 100.1  # closes at TS + 1 s + 15 min (no 1 s candle there: the 1 m one is used)
    m_closes[60] = 103.0  # closes at TS + 1 s + 60 min
    _candles(eth, "1m", minutes, m_closes)
    return {name: _predict(eth, name, TS, probs) for name, probs in
            (("cnn", (0.6, 0.2, 0.2)), ("dqn", (0.1, 0.7, 0.2)), ("transformer", (0.2, 0.2, 0.6)))}


def _outcome(name: str, horizon: str) -> PredictionOutcome:
    return PredictionOutcome.objects.get(model_name=name, horizon=horizon)


def test_each_horizon_is_scored_once_its_end_price_is_stored(eth, market):
    counts = prediction_outcomes_score(instrument=eth, until_ms=T0 + 400_000)
    assert counts == {"1m": 3, "5m": 3, "15m": 0, "60m": 0, "unknown": 0}  # 15m / 60m not due yet

    one = _outcome("cnn", "1m")
    assert (float(one.price_start), float(one.price_end)) == (100.0, 100.5)
    assert one.realized_return == pytest.approx(0.005) and one.label == "BUY" and one.correct
    assert one.pnl_bps == pytest.approx(30.0)  # 50 bps move - 2 x 10 bps fees
    assert one.brier == pytest.approx(0.4 ** 2 + 0.2 ** 2 + 0.2 ** 2)
    five = _outcome("cnn", "5m")
    assert five.label == "SELL" and not five.correct and five.pnl_bps == pytest.approx(-70.0)
    assert _outcome("dqn", "5m").correct and _outcome("dqn", "5m").pnl_bps == pytest.approx(30.0)
    assert _outcome("dqn", "1m").pnl_bps == pytest.approx(-70.0)

    counts = prediction_outcomes_score(instrument=eth)  # until the newest stored candle (T0 + 70 min)
    assert counts == {"1m": 0, "5m": 0, "15m": 3, "60m": 3, "unknown": 0}
    fifteen = _outcome("transformer", "15m")
    assert float(fifteen.price_end) == 100.1 and fifteen.label == "HOLD" and fifteen.correct
    assert fifteen.pnl_bps == 0.0  # HOLD does not trade
    assert _outcome("cnn", "15m").pnl_bps == pytest.approx(-10.0)  # +10 bps move does not pay the fees
    sixty = _outcome("cnn", "60m")
    assert sixty.label == "BUY" and sixty.correct and sixty.pnl_bps == pytest.approx(280.0)


def test_scoring_again_writes_nothing_and_a_missing_price_leaves_the_call_unscored(eth, market):
    prediction_outcomes_score(instrument=eth)
    assert PredictionOutcome.objects.count() == 12
    assert prediction_outcomes_score(instrument=eth) == {"1m": 0, "5m": 0, "15m": 0, "60m": 0, "unknown": 0}
    assert PredictionOutcome.objects.count() == 12

    late = T0 + 500_000  # 1 s data ends at T0 + 400 s and +1 min is not a minute boundary
    _predict(eth, "cnn", late, (0.2, 0.2, 0.6))
    counts = prediction_outcomes_score(instrument=eth)
    assert counts["1m"] == 0 and counts["unknown"] >= 1
    assert not PredictionOutcome.objects.filter(prediction__ts_event=ms_to_datetime(late)).exists()


def test_skipped_predictions_are_not_scored(eth, market):
    services.prediction_record(instrument=eth, model_name="cnn", checkpoint=None, ts_event_ms=TS + 1000,
                               completeness={}, reason="gate")
    prediction_outcomes_score(instrument=eth)
    assert not PredictionOutcome.objects.filter(prediction__status="skipped").exists()


def test_the_default_until_is_the_newest_stored_candle_close(eth, market):
    assert price_until_ms(instrument=eth) == T0 + 70 * 60_000


def test_metrics_per_model_horizon_and_day_and_the_calibration(eth, market):
    prediction_outcomes_score(instrument=eth)
    rows = {(r["model_name"], r["horizon"]): r for r in outcome_metrics(instrument=eth)}
    cnn = rows[("cnn", "1m")]
    assert cnn["n"] == 1 and cnn["accuracy"] == 1.0 and cnn["pnl_bps_sum"] == pytest.approx(30.0)
    assert cnn["symbol"] == "ETHUSDT" and cnn["period"] == ms_to_datetime(T0) and cnn["trades"] == 1
    assert rows[("transformer", "15m")]["baseline_hold"] == 1.0 and rows[("transformer", "5m")]["trades"] == 0
    hourly = outcome_metrics(model_name="cnn", horizon="5m", bucket="hour")
    assert len(hourly) == 1 and hourly[0]["accuracy"] == 0.0

    calibration = outcome_calibration(model_name="cnn", horizon="1m")
    assert calibration["n"] == 1 and calibration["ece"] == pytest.approx(0.4)  # 60 % sure, right
    assert calibration["bins"][5]["n"] == 1 and calibration["brier"] == pytest.approx(0.24)

    summary = learning_summary()
    assert summary["models"]["cnn"]["60m"]["accuracy"] == 1.0 and summary["alerts"] == []


def test_predictions_from_the_engine_are_scored_against_the_stored_1s_candles(settings):
    from itertools import islice

    from apps.pipeline.engine import Engine
    from apps.pipeline.runner import default_recordings

    settings.GOGO_MIN_COMPLETENESS = 0.0
    engine = Engine(recordings=default_recordings(), accounts=[])
    updates = list(islice(engine.run(), 80))
    engine.flush()
    prediction_outcomes_score(instrument=engine.traded)
    # cnn and dqn from the first second on; the last ~61 s are not due yet
    assert PredictionOutcome.objects.filter(horizon="1m").count() >= 2 * 15
    row = PredictionOutcome.objects.filter(model_name="cnn", horizon="1m").order_by("ts_event").first()
    ts = int(row.ts_event.timestamp() * 1000)
    closes = {u["ts"]: u["instruments"]["ETHUSDT"]["candle"] for u in updates}
    start = closes[ts]["c"] if closes.get(ts) else None
    if start is not None:  # the second had trades: the start price is its 1 s close
        assert float(row.price_start) == pytest.approx(start)
    assert row.realized_return == pytest.approx(float(row.price_end) / float(row.price_start) - 1)


def test_scoring_throughput_is_thousands_of_predictions_per_second(eth):
    n = 3000
    _candles(eth, "1s", [T0 + k * 1000 for k in range(n + 70)], [100.0 + (k % 17) * 0.05 for k in range(n + 70)])
    rows = [Prediction(instrument=eth, model_name=m, ts_event=ms_to_datetime(T0 + k * 1000), status="predicted",
                       action="BUY", prob_buy=0.5, prob_sell=0.3, prob_hold=0.2, confidence=0.5)
            for k in range(n) for m in ("cnn", "dqn")]
    Prediction.objects.bulk_create(rows)
    started = time.perf_counter()
    counts = prediction_outcomes_score(instrument=eth, horizons=("1m",))
    elapsed = time.perf_counter() - started
    assert counts["1m"] == 2 * n
    rate = 2 * n / elapsed
    print(f"scoring throughput: {rate:.0f} predictions/s ({2 * n} in {elapsed:.2f} s)")
    assert rate > 1000


def test_the_tasks_score_and_the_beat_schedule_is_created_once(eth, market):
    from django_celery_beat.models import PeriodicTask

    from workers.scoring import score_outcomes, score_outcomes_sweep

    assert score_outcomes.apply(args=(eth.pk,), kwargs={"horizons": ["1m"]}).get()["1m"] == 3
    assert score_outcomes_sweep.apply().get()["ETHUSDT@binance"]["60m"] == 3
    services.registry_defaults_ensure()
    services.registry_defaults_ensure()
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert {"outcome scoring sweep", "model alert check", "fine-tune cnn", "full retrain dqn"} <= names
    sweep = PeriodicTask.objects.get(name="outcome scoring sweep")
    assert sweep.task == "workers.scoring.score_outcomes_sweep" and sweep.interval.every == 1
    assert PeriodicTask.objects.filter(name="outcome scoring sweep").count() == 1
    assert PeriodicTask.objects.get(name="full retrain cnn").enabled  # its checkpoint goes to shadow first


def test_batches_never_split_a_second_and_score_every_call_once(eth, monkeypatch):
    from apps.predictions import outcomes

    monkeypatch.setattr(outcomes, "BATCH", 7)  # 3 models a second: batches end mid-second
    _candles(eth, "1s", [T0 + k * 1000 for k in range(80)], [100.0] * 80)
    for k in range(10):
        for name in ("cnn", "dqn", "transformer"):
            _predict(eth, name, T0 + k * 1000, (0.2, 0.2, 0.6))
    assert prediction_outcomes_score(instrument=eth, horizons=("1m",))["1m"] == 30
    assert PredictionOutcome.objects.filter(horizon="1m").count() == 30
    assert prediction_outcomes_score(instrument=eth, horizons=("1m",), limit=4)["1m"] == 0
