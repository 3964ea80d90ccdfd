"""The per-second update the engine publishes for the dashboard (Engine._update): pivots per
timeframe, each model's scored accuracy, and per account equity, open orders and new fills."""
from __future__ import annotations

from itertools import islice

import pytest
from django.contrib.auth import get_user_model

from apps.pipeline.engine import Engine
from apps.pipeline.runner import default_recordings
from apps.trading.models import Fill
from apps.trading.services import account_ensure_paper, orchestrator_config_get
from ml.features.pivots import floor_pivots

pytestmark = pytest.mark.django_db


@pytest.fixture
def updates(settings, pipeline_ready, monkeypatch):
    """70 seconds of the recorded session with the gate open and a desk that always trades: models
    with known edges (tests/apps/trading/edges.py), equal weights, a zero margin."""
    from tests.apps.trading.edges import give_models_edges

    give_models_edges(monkeypatch)
    settings.GOGO_MIN_COMPLETENESS = 0.0
    account = account_ensure_paper(owner=get_user_model().objects.create_user("tick"))
    engine = Engine(recordings=default_recordings(), accounts=[account])
    config = orchestrator_config_get(instrument=engine.traded)
    config.margin_bps, config.gating_mode = 0.0, "equal"
    config.cooldown_seconds, config.max_spread_bps, config.max_volatility = 10, None, None
    config.save()
    return account, engine, list(islice(engine.run(), 70))


def test_each_update_carries_the_floor_pivots_of_the_previous_period(updates):
    _, engine, ticks = updates
    tick = ticks[-1]
    minute = tick["ts"] - tick["ts"] % 60_000

    pivots = tick["pivots"]["1m"]

    previous = _candle(engine, "1m", minute - 60_000)
    assert pivots["t"] == minute
    expected = floor_pivots(previous[0], previous[1], previous[2]).as_dict()
    assert {k: pivots[k] for k in expected} == pytest.approx(expected, rel=1e-6)
    assert set(tick["pivots"]) == {"1m", "1h", "1d"}
    assert tick["pivots"]["1d"]["t"] == tick["ts"] - tick["ts"] % 86_400_000


def _candle(engine, timeframe: str, open_ms: int) -> tuple[float, float, float]:
    """High, low, close of a candle as the engine's ring holds it (float32, as the update uses)."""
    values, present = engine.rings[engine.traded.symbol][timeframe].window(open_ms, 1)
    assert present[0]
    return float(values[0][1]), float(values[0][2]), float(values[0][3])


def test_accounts_carry_equity_open_orders_and_each_fill_once(updates):
    account, _, ticks = updates
    states = [t["accounts"][str(account.pk)] for t in ticks]

    published = [f for s in states for f in s["new_fills"]]
    stored = Fill.objects.filter(order__account=account).order_by("ts_event", "pk")

    assert stored.exists()
    assert [(f["side"], f["price"], f["quantity"]) for f in published] == \
        [(f.order.side, float(f.price), float(f.quantity)) for f in stored]
    assert all(isinstance(s["equity"], float) and isinstance(s["open_orders"], list) for s in states)
    assert states[-1]["equity"] == pytest.approx(10_000 + states[-1]["pnl"], abs=0.01)


def test_decisions_carry_the_edge_the_margin_and_why_each_model_has_its_weight(updates):
    _, _, ticks = updates
    decisions = [d for t in ticks for d in t["decisions"]]

    assert decisions
    last = decisions[-1]
    assert last["margin_bps"] == 0.0 and isinstance(last["edge_bps"], float)
    assert last["gating"]["mode"] == "equal"
    assert set(last["gating"]["why"]) == set(last["gating"]["weights"])
    assert all(why.startswith(f"{name}: ") for name, why in last["gating"]["why"].items())


def test_models_carry_their_scored_accuracy(updates):
    _, _, ticks = updates
    predicted = [t for t in ticks if t["prediction"]["status"] == "predicted"]

    assert predicted
    accuracy = predicted[-1]["prediction"]["accuracy"]
    assert set(accuracy) == set(predicted[-1]["prediction"]["models"])
    assert all(len(pair) == 2 and pair[1] >= 0 for pair in accuracy.values())
