"""The dashboard page and its history endpoint (apps.dashboard.views, apps.dashboard.selectors)."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from apps.market.models import Candle, Instrument
from apps.predictions.models import ModelCheckpoint
from apps.trading.models import Decision, Fill, Order
from apps.trading.services import account_ensure_paper
from ml.features.pivots import floor_pivots

pytestmark = pytest.mark.django_db


@pytest.fixture
def eth() -> Instrument:
    return Instrument.objects.get(venue="binance", symbol="ETHUSDT")


@pytest.fixture
def user(client):
    user = get_user_model().objects.create_user("dana")
    client.force_login(user)
    return user


def _trade(account, instrument, ts, side: str, price: str) -> Decision:
    why = {"cnn": "cnn: net edge +3.0 bps ± 1.0 over 200 calls",
           "dqn": "dqn: weight 0 — net edge -3.1 bps ± 1.0 over 120 calls (mean − 1·SE ≤ 0)"}
    decision = Decision.objects.create(account=account, instrument=instrument, ts_event=ts, action=side, confidence=3.1,
                                       threshold=2.0, reason=f"edge {side} +3.1 bps > margin 2.0 bps",
                                       inputs={"gating": {"mode": "learned", "weights": {"cnn": 1.0, "dqn": 0.0},
                                                          "why": why, "accuracy": {"cnn": [0.55, 200]}}})
    order = Order.objects.create(account=account, instrument=instrument, decision=decision, side=side,
                                 client_order_id=f"t-{account.pk}-{ts.timestamp()}", quantity=Decimal("0.5"),
                                 filled_quantity=Decimal("0.5"), average_price=Decimal(price),
                                 status=Order.Status.FILLED, ts_event=ts)
    Fill.objects.create(order=order, seq=1, price=Decimal(price), quantity=Decimal("0.5"), fee=Decimal("1.3"), ts_event=ts)
    return decision


def test_the_1m_history_carries_each_candles_floor_pivots_from_the_one_before(client, user, eth):
    body = client.get("/dashboard/history/", {"timeframe": "1m"}).json()

    candles = body["candles"]
    assert body["timeframe"] == "1m" and len(candles) == 240
    stored = list(Candle.objects.filter(instrument=eth, timeframe="1m").order_by("-open_time")[:2])
    before, last = stored[1], stored[0]
    assert candles[-1]["t"] == int(last.open_time.timestamp() * 1000)
    expected = floor_pivots(float(before.high), float(before.low), float(before.close)).as_dict()
    assert candles[-1]["pv"] == pytest.approx(expected)
    assert candles[0]["pv"] is None  # its predecessor is not in the window


def test_history_holds_the_users_decisions_and_fills_but_not_anyone_elses(client, user, eth):
    last = Candle.objects.filter(instrument=eth, timeframe="1m").latest("open_time").open_time
    _trade(account_ensure_paper(owner=user), eth, last, "BUY", "2601.50")
    _trade(account_ensure_paper(owner=get_user_model().objects.create_user("eve")), eth, last, "SELL", "2602.00")

    body = client.get("/dashboard/history/", {"timeframe": "1m"}).json()

    assert [(d["action"], d["order"]["status"], d["order"]["price"]) for d in body["decisions"]] == \
        [("BUY", "FILLED", "2601.50000000")]
    assert [(d["edge_bps"], d["margin_bps"], d["reason"]) for d in body["decisions"]] == \
        [(3.1, 2.0, "edge BUY +3.1 bps > margin 2.0 bps")]
    assert body["fills"] == [{"ts": int(last.timestamp() * 1000), "side": "BUY", "price": 2601.5, "quantity": 0.5}]
    assert body["gating"]["weights"] == {"cnn": 1.0, "dqn": 0.0}
    assert body["gating"]["why"]["dqn"].startswith("dqn: weight 0 — net edge -3.1 bps")
    assert list(body["accounts"]) == [str(user.trading_accounts.get().pk)]


def test_an_unknown_timeframe_is_refused_naming_it(client, user):
    response = client.get("/dashboard/history/", {"timeframe": "5m"})

    assert response.status_code == 400 and response.json()["error"].startswith("timeframe")


def test_the_page_shows_the_timeframes_and_the_checkpoint_ranking(client, user):
    ModelCheckpoint.objects.create(model_name="zeta", version="v-low", path="/nowhere/low.pt", validation_metric=0.41)
    ModelCheckpoint.objects.create(model_name="zeta", version="v-high", path="/nowhere/high.pt", validation_metric=0.58,
                                   is_active=True, state=ModelCheckpoint.State.LIVE)

    page = client.get("/").content.decode()

    for tf in ("1s", "1m", "1h", "1d"):
        assert f'data-timeframe="{tf}"' in page
    assert page.index("v-high") < page.index("v-low")  # best metric first
    assert 'data-model="zeta" data-rank="1"' in page and "0.5800" in page


def test_the_risk_card_shows_each_accounts_limits(client, user, eth):
    from apps.risk.models import RiskLimit

    account = account_ensure_paper(owner=user)
    RiskLimit.objects.create(account=account, instrument=eth, max_position=Decimal("2.5"), daily_loss_limit=Decimal("750"),
                             max_drawdown=0.15, stop_loss=0.01)

    page = client.get("/").content.decode()

    assert "Limits" in page and "2.5000" in page and "750 USD" in page and "15 %" in page
    assert "0.01 / off / off" in page
