"""A short backtest window of the recorded 2024-08-08/09 spot session with eager settings, so
every run decides from its first second and trades: the models get known calibrated edges
(tests/apps/trading/edges.py), weighted equally, and the margin is 0 bps."""
import pytest

from apps.market.convert import ms_to_datetime
from apps.market.models import Instrument
from apps.trading.models import OrchestratorConfig

WINDOW_S = 80


@pytest.fixture
def window(pipeline_ready, settings, monkeypatch):
    """(start, end) datetimes of the first WINDOW_S seconds; the completeness gate off, models with
    known edges, equal weights and a zero margin."""
    from apps.backtest.services import recording_span_ms
    from apps.pipeline.runner import default_recordings
    from tests.apps.trading.edges import give_models_edges

    give_models_edges(monkeypatch)
    settings.GOGO_MIN_COMPLETENESS = 0.0
    eth = Instrument.objects.get(venue="binance", symbol="ETHUSDT")
    OrchestratorConfig.objects.update_or_create(
        instrument=eth, defaults={"margin_bps": 0.0, "gating_mode": "equal", "cooldown_seconds": 5,
                                  "max_spread_bps": None, "max_volatility": None})
    first, _ = recording_span_ms(default_recordings()["ETHUSDT"])
    return None, ms_to_datetime(first // 1000 * 1000 + WINDOW_S * 1000)
