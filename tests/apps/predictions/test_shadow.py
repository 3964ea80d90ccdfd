"""Shadow mode: a new checkpoint predicts beside the live one, is stored and scored, never reaches
the desk, and is promoted only with a proven net edge on the same seconds (apps.predictions.promotion)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
import torch

from apps.market.convert import ms_to_datetime
from apps.market.models import Instrument
from apps.predictions import inference, promotion, services
from apps.predictions.models import ModelCheckpoint, Prediction, PredictionOutcome, RegistrySettings, TrainingRun
from ml.models.checkpoint import save_checkpoint
from ml.models.live import untrained
from ml.models.market import MarketModel
from ml.models.specs import spec_for

pytestmark = pytest.mark.django_db
TS = 1_723_161_599_000  # 2024-08-08 23:59:59 UTC: the stored 1m/1h/1d history is complete here
T0 = 1_893_456_000_000


@pytest.fixture
def eth():
    return Instrument.objects.get(venue="binance", symbol="ETHUSDT")


@pytest.fixture(autouse=True)
def _fresh_shadow_cache():
    inference.shadow_models_forget()
    yield
    inference.shadow_models_forget()


def _constant_cnn(action: int) -> MarketModel:
    """A tiny CNN that always answers ``action`` (ACTIONS index: BUY 0, SELL 1, HOLD 2) at every horizon."""
    model = untrained("cnn", embed=4, hidden=4)
    with torch.no_grad():
        model.head.weight.zero_()
        bias = torch.zeros(len(model.config.horizons_min), 3)
        bias[:, action] = 10.0
        model.head.bias.copy_(bias.reshape(-1))
    return model.eval()


def _register_shadow(tmp_path, action: int, version: str = "shadow-buy") -> ModelCheckpoint:
    model = _constant_cnn(action)
    path = tmp_path / f"cnn-{version}.pt"
    sha = save_checkpoint(path, model, model.config, {"val_macro_f1": 0.1}, (0, 1000))
    return services.checkpoint_register(model_name="cnn", version=version, path=path, sha256=sha,
                                        config=model.config.to_dict(), metrics={"val_macro_f1": 0.1},
                                        data_range=(0, 1000), validation_metric=0.1)


def test_a_shadow_predicts_every_second_is_stored_and_scored_but_never_reaches_the_desk(eth, tmp_path):
    btc = Instrument.objects.get(venue="binance", symbol="BTCUSDT")
    models = services.models_load_enabled()
    live_cnn = models["cnn"][1]
    shadow = _register_shadow(tmp_path, action=0)  # the session's live cnn exists: the new one goes to shadow
    assert shadow.state == "shadow" and not shadow.is_active
    assert ModelCheckpoint.objects.get(model_name="cnn", is_active=True).pk == live_cnn.pk

    for ts in (TS, TS - 1000):
        inputs = inference.inference_input_from_db(instrument=eth, reference=btc, ts_ms=ts)
        result = inference.inference_run(instrument=eth, inputs=inputs, models=models)
        # the desk reads result.outputs (and links result.rows): only the live checkpoints' calls
        assert sorted(result.outputs) == ["cnn", "dqn", "transformer"]
        own = spec_for("cnn").predict(models["cnn"][0], inputs)  # the live model's own call
        assert result.outputs["cnn"].probs == pytest.approx(own.probs)
        assert result.rows["cnn"].checkpoint_id == live_cnn.pk and not result.rows["cnn"].shadow
        assert result.shadow_outputs["cnn"].action == "BUY" and result.shadow_outputs["cnn"].confidence > 0.99
        assert result.shadow_rows["cnn"].shadow and result.shadow_rows["cnn"].checkpoint_id == shadow.pk

    stored = Prediction.objects.filter(model_name="cnn", ts_event=ms_to_datetime(TS))
    assert sorted((p.shadow, p.checkpoint_id) for p in stored) == [(False, live_cnn.pk), (True, shadow.pk)]
    assert Prediction.objects.get(model_name="cnn", shadow=True, ts_event=ms_to_datetime(TS)).input_package

    # the outcome scorer scores the shadow's calls too, marked as such
    from apps.predictions.outcomes import prediction_outcomes_score

    counts = prediction_outcomes_score(instrument=eth, until_ms=TS + 3_700_000, horizons=("5m",))
    assert counts["5m"] == 4  # cnn, transformer, dqn and the cnn shadow at TS (TS - 1 s has no stored start price)
    scored = PredictionOutcome.objects.filter(model_name="cnn", horizon="5m", ts_event=ms_to_datetime(TS))
    assert sorted(o.shadow for o in scored) == [False, True]
    assert PredictionOutcome.objects.get(model_name="cnn", horizon="5m", shadow=True, ts_event=ms_to_datetime(TS)
                                         ).action == "BUY"

    # the accuracy metrics (dashboard, alerts) count the live checkpoint's calls only
    from apps.predictions.metrics import outcome_metrics

    assert sum(r["n"] for r in outcome_metrics(instrument=eth, model_name="cnn", horizon="5m")) == 1  # live at TS


def _scored_pairs(eth, live: ModelCheckpoint, shadow: ModelCheckpoint, returns: np.ndarray,
                  live_actions: list[str], shadow_actions: list[str]) -> None:
    """One live and one shadow prediction per second from T0, with 5m outcomes of ``returns``."""
    def rows(checkpoint, is_shadow, actions):
        preds = Prediction.objects.bulk_create([
            Prediction(instrument=eth, model_name="cnn", checkpoint=checkpoint, shadow=is_shadow,
                       ts_event=ms_to_datetime(T0 + k * 1000), status="predicted", action=a, prob_buy=0.4,
                       prob_sell=0.3, prob_hold=0.3, confidence=0.4) for k, a in enumerate(actions)])
        PredictionOutcome.objects.bulk_create([
            PredictionOutcome(prediction=p, horizon="5m", instrument=eth, model_name="cnn", shadow=is_shadow,
                              ts_event=p.ts_event, action=p.action, confidence=0.4, price_start=Decimal(100),
                              price_end=Decimal(str(round(100 * (1 + r), 8))), realized_return=float(r), label="HOLD",
                              correct=False, pnl_bps=0.0, brier=0.5)
            for p, r in zip(preds, returns, strict=True)])

    rows(live, False, live_actions)
    rows(shadow, True, shadow_actions)


def _live_and_shadow(register_row) -> tuple[ModelCheckpoint, ModelCheckpoint, TrainingRun]:
    live = register_row(0.5)
    shadow = register_row(0.4, shadow=None)
    run = TrainingRun.objects.create(model_name="cnn", kind="fine_tune", state="shadow", checkpoint=shadow)
    return live, shadow, run


def test_a_shadow_with_a_clear_net_edge_on_the_same_seconds_is_promoted_and_rolled_back(register_row, eth):
    RegistrySettings.objects.update_or_create(pk=1, defaults={"promotion_min_n": 1200})
    live, shadow, run = _live_and_shadow(register_row)
    rng = np.random.default_rng(0)
    n = 2400
    returns = rng.choice([-0.005, 0.005], n) + rng.normal(0, 0.001, n)  # +-50 bps moves over 5 minutes
    right = rng.random(n) < 0.8  # the shadow calls the direction 80 % of the time; the live one holds
    shadow_actions = ["BUY" if (r > 0) == ok else "SELL" for r, ok in zip(returns, right, strict=True)]
    _scored_pairs(eth, live, shadow, returns, ["HOLD"] * n, shadow_actions)

    evidence = promotion.shadow_evaluate(checkpoint=shadow)
    expected = promotion.net_outcome_bps(np.array(shadow_actions), returns, 20.0)
    assert evidence["decision"] == "promoted" and evidence["n"] == n and evidence["block"] == 300
    assert evidence["mean"] == pytest.approx(expected.mean()) and evidence["live_net_bps"] == 0.0
    assert 0 < evidence["lo"] < evidence["mean"] < evidence["hi"] and evidence["mean"] == pytest.approx(10.0, abs=3.0)
    shadow.refresh_from_db()
    live.refresh_from_db()
    run.refresh_from_db()
    assert shadow.state == "live" and shadow.is_active and shadow.replaced_id == live.pk
    assert live.state == "retired" and not live.is_active
    assert run.state == "promoted" and "lower end > 0" in run.reason
    assert shadow.evidence["decision"] == "promoted" and shadow.evidence["lo"] == evidence["lo"]

    services.checkpoint_rollback(checkpoint=shadow.replaced)  # the one-click rollback
    live.refresh_from_db()
    shadow.refresh_from_db()
    assert live.is_active and live.pinned and live.state == "live" and shadow.state == "retired"


def test_a_shadow_no_better_than_the_live_one_is_refused_and_stays_off_the_desk(register_row, eth):
    RegistrySettings.objects.update_or_create(pk=1, defaults={"promotion_min_n": 1200})
    live, shadow, run = _live_and_shadow(register_row)
    rng = np.random.default_rng(1)
    n = 2400
    returns = rng.choice([-0.005, 0.005], n) + rng.normal(0, 0.001, n)
    coin = ["BUY" if b else "SELL" for b in rng.random(n) < 0.5]  # a coin flip pays the 20 bps cost every call
    _scored_pairs(eth, live, shadow, returns, ["HOLD"] * n, coin)

    evidence = promotion.shadow_evaluate(checkpoint=shadow)
    assert evidence["decision"] == "refused" and evidence["hi"] < 0 and "not better" in evidence["why"]
    assert evidence["mean"] == pytest.approx(-20.0, abs=3.0)
    shadow.refresh_from_db()
    run.refresh_from_db()
    assert shadow.state == "retired" and not shadow.is_active and run.state == "refused"
    assert ModelCheckpoint.objects.get(model_name="cnn", is_active=True).pk == live.pk


def test_too_few_shared_seconds_leave_a_shadow_pending_until_its_time_runs_out(register_row, eth):
    live, shadow, _run = _live_and_shadow(register_row)  # default minimum: 3600 shared seconds
    returns = np.full(600, 0.005)
    _scored_pairs(eth, live, shadow, returns, ["HOLD"] * 600, ["BUY"] * 600)  # +30 bps every second

    evidence = promotion.shadow_evaluate(checkpoint=shadow)
    assert evidence["decision"] == "pending" and evidence["n"] == 600 and "needs 3600" in evidence["why"]
    shadow.refresh_from_db()
    assert shadow.state == "shadow" and shadow.evidence["n"] == 600

    later = shadow.created_at + timedelta(hours=49)
    assert promotion.shadows_evaluate(now=later) == {str(shadow): "refused"}
    shadow.refresh_from_db()
    assert shadow.state == "retired" and "no proven edge after 48 h" in shadow.evidence["why"]


def test_a_pinned_live_checkpoint_holds_off_a_better_shadow(register_row, eth):
    RegistrySettings.objects.update_or_create(pk=1, defaults={"promotion_min_n": 100})
    live, shadow, _run = _live_and_shadow(register_row)
    services.checkpoint_rollback(checkpoint=live)
    returns = np.where(np.arange(400) % 2 == 0, 0.005, -0.004)
    _scored_pairs(eth, live, shadow, returns, ["HOLD"] * 400, ["BUY" if r > 0 else "SELL" for r in returns])
    evidence = promotion.shadow_evaluate(checkpoint=shadow)
    assert evidence["decision"] == "held" and evidence["lo"] > 0
    assert ModelCheckpoint.objects.get(model_name="cnn", is_active=True).pk == live.pk


def test_the_periodic_shadow_check_is_scheduled_enabled_with_night_training(db):
    from django_celery_beat.models import PeriodicTask

    services.registry_defaults_ensure()
    check = PeriodicTask.objects.get(name="shadow promotion check")
    assert check.task == "workers.scoring.evaluate_shadows" and check.enabled and check.interval.every == 5
    fine_tune = PeriodicTask.objects.get(name="fine-tune cnn")
    retrain = PeriodicTask.objects.get(name="full retrain cnn")
    assert fine_tune.enabled and (fine_tune.crontab.hour, fine_tune.crontab.minute) == ("2", "30")
    assert retrain.enabled and retrain.crontab.day_of_week == "0" and retrain.queue == "training"


def test_history_retention_counts_a_shadows_calls_apart_from_the_live_ones(eth):
    RegistrySettings.objects.update_or_create(pk=1, defaults={"history_max_count": 2, "history_max_age_days": 0})
    for shadow in (False, True):
        for k in range(4):
            services.prediction_record_many(instrument=eth, ts_event_ms=T0 + k * 1000, completeness={}, items=[
                services.PredictionItem("cnn", None, reason="test", shadow=shadow)])
    services.prediction_prune()
    kept = Prediction.objects.filter(model_name="cnn", ts_event__gte=ms_to_datetime(T0))
    assert sorted((p.shadow, p.ts_event) for p in kept) == [
        (s, ms_to_datetime(T0 + k * 1000)) for s in (False, True) for k in (2, 3)]
