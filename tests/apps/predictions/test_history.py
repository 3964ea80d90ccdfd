"""Inference history: every enabled model stored with its input package, the selector, retention,
storage failures that do not stop predictions, and the Celery inference task."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import DatabaseError

from apps.market.convert import ms_to_datetime
from apps.market.models import Instrument
from apps.predictions import inference, services
from apps.predictions.models import ModelSetting, Prediction, RegistrySettings
from apps.predictions.selectors import prediction_list
from ml.features.groups import input_groups

pytestmark = pytest.mark.django_db
TS = 1_723_161_599_000  # 2024-08-08 23:59:59 UTC: the stored 1m/1h/1d history is complete here


@pytest.fixture
def eth():
    return Instrument.objects.get(venue="binance", symbol="ETHUSDT")


@pytest.fixture
def inputs(eth):
    btc = Instrument.objects.get(venue="binance", symbol="BTCUSDT")
    return inference.inference_input_from_db(instrument=eth, reference=btc, ts_ms=TS)


def test_the_input_rebuilt_from_the_database_has_complete_history_and_no_1s_data(inputs):
    scores = inputs.completeness()
    assert scores["primary_1m"] == scores["primary_1h"] == scores["primary_1d"] == 1.0
    assert scores["primary_1s"] == scores["cob"] == 0.0


def test_each_model_is_stored_and_read_back_with_its_input_package(eth, inputs):
    models = services.models_load_enabled()
    result = inference.inference_run(instrument=eth, inputs=inputs, models=models)
    assert list(result.outputs) == ["cnn", "transformer", "dqn"]  # the cascade order; 1 s and COB groups masked
    assert result.storage_errors == 0

    rows = {p.model_name: p for p in prediction_list(instrument=eth, model_name="dqn", start=ms_to_datetime(TS),
                                                      end=ms_to_datetime(TS + 1000))}
    dqn = Prediction.objects.get(pk=rows["dqn"].pk)
    assert dqn.status == "predicted" and dqn.checkpoint == models["dqn"][1]
    assert dqn.prob_buy == pytest.approx(result.outputs["dqn"].probs["BUY"])
    meta = dqn.output["metadata"]
    assert set(dqn.output["predicted_returns"]) == {"60m"} and "q_values" in meta and set(meta["edge_bps"]) == {
        "BUY", "SELL"}
    assert meta["upstream"] == ["cnn", "transformer"]  # this second's outputs of the models before it
    assert "eth_1h" in meta["groups_present"] and "cob_levels" not in meta["groups_present"]
    package = services.unpack_input(dqn.input_package)
    values, mask = input_groups(inputs)
    np.testing.assert_array_equal(package["eth_1h"], values["eth_1h"])
    assert package["mask_eth_1h"].tolist() == [True] and package["mask_cob_levels"].tolist() == [False]
    assert package["mask_upstream"].tolist() == [True] and package["cnn_hidden"].shape == (64,)
    assert set(package) == {name for g in models["dqn"][0].names for name in (g, f"mask_{g}")}


def test_the_selector_filters_by_model_and_half_open_time_range(eth):
    for k in range(5):
        services.prediction_record(instrument=eth, model_name="cnn", checkpoint=None, ts_event_ms=TS + k * 1000,
                                   completeness={}, reason="test")
    services.prediction_record(instrument=eth, model_name="dqn", checkpoint=None, ts_event_ms=TS, completeness={})
    got = list(prediction_list(instrument=eth, model_name="cnn", start=ms_to_datetime(TS + 1000),
                               end=ms_to_datetime(TS + 4000)))
    assert [p.ts_event for p in got] == [ms_to_datetime(TS + k * 1000) for k in (1, 2, 3)]


def test_a_storage_failure_is_logged_and_counted_and_predictions_go_on(eth, inputs, monkeypatch, caplog):
    def broken(**kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(inference, "prediction_record_many", broken)
    result = inference.inference_run(instrument=eth, inputs=inputs, models=services.models_load_enabled())
    assert sorted(result.outputs) == ["cnn", "dqn", "transformer"] and result.rows == {}
    assert result.storage_errors == 3
    assert any("storing 3 predictions failed" in r.message for r in caplog.records)
    monkeypatch.undo()  # the failed write was rolled back to its savepoint: the transaction is still usable
    services.prediction_record(instrument=eth, model_name="cnn", checkpoint=None, ts_event_ms=TS, completeness={})


def test_retention_deletes_by_age_then_keeps_the_newest_count_per_model(eth):
    RegistrySettings.objects.update_or_create(pk=1, defaults={"history_max_count": 3, "history_max_age_days": 10})
    Prediction.objects.all().delete()
    now = datetime(2024, 8, 20, tzinfo=UTC)
    start_ms = int((now - timedelta(days=12)).timestamp() * 1000)
    for day in range(12):  # one row per day, 12 to 1 days old
        for name in ("cnn", "dqn"):
            services.prediction_record(instrument=eth, model_name=name, checkpoint=None,
                                       ts_event_ms=start_ms + day * 86_400_000, completeness={})
    deleted = services.prediction_prune(now=now)
    assert deleted == {"by_age": 2 * 2, "by_count": 2 * (10 - 3)}
    newest = [now - timedelta(days=d) for d in (3, 2, 1)]
    for name in ("cnn", "dqn"):
        assert list(Prediction.objects.filter(model_name=name).order_by("ts_event")
                    .values_list("ts_event", flat=True)) == newest


def test_the_celery_task_runs_every_enabled_model_on_stored_data(eth, settings):
    from workers.inference import run_inference

    settings.GOGO_MIN_COMPLETENESS = 0.0
    btc = Instrument.objects.get(venue="binance", symbol="BTCUSDT")
    out = run_inference.apply(args=(eth.pk, btc.pk, TS)).get()
    assert out["predicted"] == ["cnn", "dqn", "transformer"] and not out["skipped"]
    ModelSetting.objects.filter(model_name="dqn").update(enabled=False)
    out = run_inference.apply(args=(eth.pk, btc.pk, TS + 1000)).get()
    assert out["predicted"] == ["cnn", "transformer"]
    assert not Prediction.objects.filter(model_name="dqn", ts_event=ms_to_datetime(TS + 1000)).exists()


def test_the_gate_stores_a_skip_for_every_enabled_model(eth, inputs):
    result = inference.inference_run(instrument=eth, inputs=inputs, models=services.models_load_enabled(),
                                     min_completeness=0.8)
    assert result.outputs == {} and set(result.skipped) == {"cnn", "dqn", "transformer"}
    reasons = set(Prediction.objects.filter(ts_event=ms_to_datetime(TS)).values_list("reason", flat=True))
    assert len(reasons) == 1 and reasons.pop().startswith("completeness 0.50 < 0.80")


def test_a_model_that_raises_is_skipped_with_its_error_and_the_others_still_predict(eth, inputs, caplog,
                                                                                    monkeypatch):
    from dataclasses import replace

    from ml.models import specs

    def broken(model, inputs):
        raise RuntimeError("weights went NaN")

    monkeypatch.setitem(specs.SPECS, "dqn", replace(specs.SPECS["dqn"], predict=broken))
    result = inference.inference_run(instrument=eth, inputs=inputs, models=services.models_load_enabled())
    assert list(result.outputs) == ["cnn", "transformer"]
    assert result.skipped["dqn"] == "model error: RuntimeError: weights went NaN"
    assert Prediction.objects.get(model_name="dqn", ts_event=ms_to_datetime(TS)).reason.startswith("model error")
    assert "model dqn failed" in caplog.text
