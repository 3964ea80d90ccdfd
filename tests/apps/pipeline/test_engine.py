"""Engine behaviour on a slice of the recorded session (a few hundred seconds)."""
from itertools import islice

import numpy as np
import pytest

from apps.market.models import DataGap
from apps.pipeline.engine import Engine
from apps.pipeline.runner import default_recordings
from apps.pipeline.stages import inputs as inputs_module

pytestmark = pytest.mark.django_db


def test_an_injected_sequence_gap_is_counted_stored_and_resynced():
    engine = Engine(recordings=default_recordings(), drop_deltas={"ETHUSDT": {120}}, accounts=[])
    updates = list(islice(engine.run(), 60))
    engine.flush()
    assert engine.counters["ETHUSDT"].sequence_gaps == 1
    assert engine.counters["BTCUSDT"].sequence_gaps == 0
    gap = DataGap.objects.get(instrument__symbol="ETHUSDT", cause="sequence_gap")
    assert "resynced" in gap.detail
    assert updates[-1]["instruments"]["ETHUSDT"]["gaps"] == 1
    assert engine.session.synchronizer("ETHUSDT").synced


def test_each_update_carries_the_candle_frame_and_completeness_of_the_second():
    engine = Engine(recordings=default_recordings(), accounts=[])
    update = list(islice(engine.run(), 5))[-1]
    eth = update["instruments"]["ETHUSDT"]
    assert eth["candle"]["t"] == update["ts"]
    frame = eth["frame"]
    assert len(frame["bid"]) == len(frame["ask"]) == len(frame["imbalance"]) == 41
    assert frame["first"] <= frame["mid"] < frame["first"] + 41 * frame["width"]
    assert update["prediction"]["status"] == "skipped"
    assert 0 <= update["completeness"]["overall"] < 0.8


def test_every_enabled_model_predicts_each_second_and_its_output_is_fed_to_the_next(settings):
    from apps.predictions.models import Prediction

    settings.GOGO_MIN_COMPLETENESS = 0.0  # run the models from the first second on
    engine = Engine(recordings=default_recordings(), accounts=[])
    seen_last_outputs = []
    build = inputs_module.build_base_data_input

    def spy(**kwargs):
        seen_last_outputs.append(sorted(kwargs["last_outputs"]))
        return build(**kwargs)

    inputs_module.build_base_data_input = spy
    try:
        updates = list(islice(engine.run(), 65))
    finally:
        inputs_module.build_base_data_input = build
    first, last = updates[0]["prediction"], updates[-1]["prediction"]
    assert sorted(first["models"]) == sorted(last["models"]) == ["cnn", "dqn", "transformer"]
    # The models' outputs of a second are fed to every model at the next one (BaseDataInput.last_outputs).
    assert seen_last_outputs[0] == [] and seen_last_outputs[1] == seen_last_outputs[-1] == ["cnn", "dqn", "transformer"]
    assert last["gating"]["mode"] and set(last["gating"]["weights"]) == {"cnn", "dqn", "transformer"}
    counts = engine.counters["ETHUSDT"]
    assert counts.model_predictions["cnn"] == counts.predictions == 65 and counts.history_errors == 0
    assert Prediction.objects.filter(model_name="transformer", status="predicted").count() \
        == counts.model_predictions["transformer"] == 65


def test_the_worker_input_rebuilt_from_the_database_equals_the_engine_ring_input():
    from apps.predictions.inference import inference_input_from_db
    from ml.features.base_input import build_base_data_input

    engine = Engine(recordings=default_recordings(), accounts=[])
    updates = list(islice(engine.run(), 70))
    engine.flush()
    ts = updates[-1]["ts"]
    rings = engine.rings["ETHUSDT"]
    live = build_base_data_input(ts=ts, symbol="ETHUSDT", reference_symbol="BTCUSDT", rings=rings,
                                 reference_ring=engine.rings["BTCUSDT"]["1s"], frame_ring=engine.frame_rings["ETHUSDT"])
    stored = inference_input_from_db(instrument=engine.traded, reference=engine.reference, ts_ms=ts)
    assert stored.completeness() == live.completeness()
    for name, values in live.components.items():
        np.testing.assert_allclose(stored.components[name], values, rtol=1e-6, err_msg=name)
        np.testing.assert_array_equal(stored.present[name], live.present[name])


def test_a_buffered_storage_stores_no_market_rows_and_is_chosen_before_the_first_second():
    from apps.market.convert import ms_to_datetime
    from apps.market.models import Candle, CobFrame
    from apps.pipeline.stages.storage import BufferedStorage, DatabaseStorage

    engine = Engine(recordings=default_recordings(), accounts=[])
    engine.use_storage(BufferedStorage())
    updates = list(islice(engine.run(), 5))
    engine.flush()
    assert len(updates) == 5 and engine.counters["ETHUSDT"].candles_1s > 0 and engine.counters["ETHUSDT"].cob_frames > 0
    since = ms_to_datetime(engine.first_ts)
    assert not Candle.objects.filter(timeframe="1s", open_time__gte=since).exists()
    assert not CobFrame.objects.filter(ts__gte=since).exists()
    with pytest.raises(RuntimeError, match="before the first second"):
        engine.use_storage(DatabaseStorage(instruments=engine.instruments))

    stored = Engine(recordings=default_recordings(), accounts=[])
    list(islice(stored.run(), 5))
    stored.flush()
    counts = stored.counters["ETHUSDT"]
    assert Candle.objects.filter(timeframe="1s", instrument=stored.traded, open_time__gte=since).count() \
        == counts.candles_1s > 0
    assert CobFrame.objects.filter(instrument=stored.traded, ts__gte=since).count() == counts.cob_frames > 0
