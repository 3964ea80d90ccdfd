"""The headless replay: the whole pipeline over the recorded 2024-08-08/09 spot session."""
import io
import json

import pytest
from django.core.management import call_command

from apps.market.models import Candle, CobFrame, DataGap, Instrument
from apps.predictions.models import Prediction
from apps.trading.models import Decision, Fill, OrchestratorConfig, Order

pytestmark = pytest.mark.django_db

TABLES = (Candle, CobFrame, Prediction, Decision, Order, Fill, DataGap)


def _replay(*args: str) -> dict:
    out = io.StringIO()
    call_command("replay", "--speed", "max", *args, stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture
def eager_desk(monkeypatch):
    """Models with known edges (tests/apps/trading/edges.py), equal weights and a zero margin: act on
    the likelier side every 20 s, so the session trades and reaches the risk limits."""
    from tests.apps.trading.edges import give_models_edges

    give_models_edges(monkeypatch)
    eth = Instrument.objects.get(venue="binance", symbol="ETHUSDT")
    OrchestratorConfig.objects.update_or_create(
        instrument=eth, defaults={"margin_bps": 0.0, "gating_mode": "equal", "cooldown_seconds": 20}
    )


def test_the_replay_runs_the_whole_pipeline_and_a_second_run_changes_nothing(eager_desk):
    first = _replay()
    counts = {model: model.objects.count() for model in TABLES}
    second = _replay()

    eth, btc = first["instruments"]["ETHUSDT"], first["instruments"]["BTCUSDT"]
    # ~10 min 50 s of exchange time: one candle and one frame per second per instrument.
    assert 640 <= eth["candles_1s"] <= 652 and 640 <= btc["candles_1s"] <= 652
    assert 640 <= eth["cob_frames"] <= 652 and 640 <= btc["cob_frames"] <= 652
    assert eth["sequence_gaps"] == btc["sequence_gaps"] == 0
    # The gate holds inference until 1s/BTC/COB windows fill (0.8 overall), then predicts each second.
    assert eth["skipped_inferences"] > 100 and eth["predictions"] > 300
    assert eth["predictions"] + eth["skipped_inferences"] == eth["cob_frames"]
    assert btc["predictions"] == btc["decisions"] == 0
    assert eth["decisions"] == eth["predictions"]
    # Every enabled model stores one row per second (a prediction, or a skip with its reason).
    assert eth["model_predictions"]["cnn"] == eth["model_predictions"]["dqn"] == eth["predictions"]
    assert 300 < eth["model_predictions"]["transformer"] <= eth["predictions"]
    assert eth["history_errors"] == 0
    for name in ("cnn", "dqn", "transformer"):
        assert Prediction.objects.filter(instrument__symbol="ETHUSDT", model_name=name).count() == eth["cob_frames"]
    assert 0.5 < eth["mean_completeness"] < 1.0
    account = first["accounts"]["gogo-replay/paper"]
    # The models lean SELL most seconds; on spot a SELL only closes a long, so the desk stands aside
    # with no long to sell (once per episode, not once per cooldown) and sizes what it sends to what
    # the risk manager and the inventory accept: nothing is rejected.
    assert account["orders"] >= 2 and account["fills"] > 0 and account["rejections"] == 0
    assert 0 <= float(account["position"]) <= 1.0  # long-only, 1 ETH max position
    from apps.risk.models import RiskEvent

    skips = list(RiskEvent.objects.filter(kind="skipped").values_list("rule", flat=True))
    stood_aside = Decision.objects.filter(filter="risk").count()
    assert skips and set(skips) <= {"max_position", "spot_inventory", "spot_cash", "min_notional"}
    assert stood_aside > 100 and len(skips) <= account["orders"] + 1
    assert account["risk_state"] == "ACTIVE" and set(account["risk_metrics"]) == {
        "max_drawdown", "var_historical", "var_parametric", "sharpe", "sortino"}
    _check_orders_decisions_and_risk_events()

    # Deterministic and idempotent: the same counts, the same orders, no duplicated rows.
    for key in ("instruments", "accounts", "order_log_sha256"):
        assert first[key] == second[key]
    assert {model: model.objects.count() for model in TABLES} == counts
    skipped = Prediction.objects.filter(status="skipped").order_by("ts_event").first()
    assert skipped.reason.startswith("completeness 0.") and "< 0.80" in skipped.reason


def _check_orders_decisions_and_risk_events() -> None:
    """Every order has its lifecycle stored, every rejection its RiskEvent with the same reason,
    every acting decision the inputs that produced it; paper fills come one book later (latency)."""
    from apps.risk.models import RiskEvent
    from apps.trading.models import OrderEvent

    orders = list(Order.objects.all())
    assert orders
    for order in orders:
        statuses = list(OrderEvent.objects.filter(order=order).order_by("seq").values_list("status", flat=True))
        assert statuses[0] == "NEW" and statuses[-1] == order.status
        if order.status == "REJECTED":
            event = RiskEvent.objects.get(order=order)
            assert event.kind == "rejected" and event.reason == order.reject_reason
        for fill in order.fills.all():  # 50 ms latency: matched against the next second's book
            assert (fill.ts_event - order.ts_event).total_seconds() == 1.0
    assert RiskEvent.objects.filter(kind="rejected").count() == Order.objects.filter(status="REJECTED").count()
    acting = Decision.objects.exclude(action="HOLD")
    assert acting.count() == Order.objects.filter(purpose__in=("entry", "exit")).count()
    for decision in acting:
        inputs = decision.inputs
        assert set(inputs["models"]) <= {"cnn", "dqn", "transformer"} and inputs["models"]
        assert abs(sum(inputs["gating"]["weights"].values()) - 1) < 1e-9
        assert inputs["gating"]["mode"] == "equal" and decision.confidence > decision.threshold == 0.0
        assert inputs["settings"]["cooldown_seconds"] == 20 and inputs["conditions"]["spread_bps"] > 0


def test_the_default_desk_holds_until_a_model_has_measured_net_edge_and_says_why():
    """Out of the box (margin 2 bps, learned weights) no model has weight until its calls, scored net
    of costs, show a mean above one standard error over 120 of them (a checkpoint without
    ``edge_bps`` never does): the session holds, and each decision names every model's reason."""
    summary = _replay()
    decisions = summary["instruments"]["ETHUSDT"]["decisions"]
    assert decisions > 300
    first = Decision.objects.order_by("ts_event").first()
    assert first.action == "HOLD" and first.threshold == 2.0 and first.confidence == 0.0
    assert first.reason.startswith("HOLD: no model has weight (learned-none): ")
    why = first.inputs["gating"]["why"]
    assert set(why) == set(first.inputs["models"]) and all(w in first.reason for w in why.values())
    assert all(" weight 0 — " in w for w in why.values())
    acting = Decision.objects.exclude(action="HOLD").count()
    assert acting <= decisions // 20 and Order.objects.count() <= acting  # mostly HOLD


def test_the_gate_refuses_every_inference_when_the_threshold_cannot_be_met(settings):
    settings.GOGO_MIN_COMPLETENESS = 1.01
    summary = _replay()
    eth = summary["instruments"]["ETHUSDT"]
    assert eth["predictions"] == 0 and eth["decisions"] == 0
    assert eth["skipped_inferences"] == eth["cob_frames"]
    assert summary["accounts"]["gogo-replay/paper"]["orders"] == 0


def test_a_bad_speed_is_a_clear_error():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="speed must be > 0 or 'max'"):
        call_command("replay", "--speed", "-3")
