"""Engine behaviour on a slice of the recorded session (a few hundred seconds)."""
from itertools import islice

import pytest

from apps.market.models import DataGap
from apps.pipeline.engine import Engine
from apps.pipeline.runner import default_recordings

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
