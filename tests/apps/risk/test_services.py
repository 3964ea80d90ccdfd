from decimal import Decimal as D

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from apps.market.models import Instrument
from apps.risk.models import RiskEvent, RiskLimit
from apps.risk.services import risk_check_order
from apps.trading.desk import TradingDesk
from apps.trading.models import Decision, Order
from apps.trading.positions import PositionState
from apps.trading.services import account_ensure_paper, orchestrator_config_get
from ml.market.orderbook import OrderBook
from ml.models.output import ModelOutput
from ml.orchestrator import MarketConditions
from tests.apps.trading.edges import with_edges

pytestmark = pytest.mark.django_db
T0 = 1_723_161_600_000


@pytest.fixture
def account():
    user = get_user_model().objects.create_user("trader")
    account = account_ensure_paper(owner=user)
    account.latency_ms = 0
    account.save()
    return account


@pytest.fixture
def eth():
    return Instrument.objects.get(venue="binance", symbol="ETHUSDT")


def _book(mid: float) -> OrderBook:
    book = OrderBook()
    book.apply_levels([(mid - 0.01, 50.0)], [(mid + 0.01, 50.0)])
    return book


def _desk(account, eth, **limit):
    RiskLimit.objects.update_or_create(account=account, instrument=eth, defaults=limit)
    config = orchestrator_config_get(instrument=eth)
    config.margin_bps, config.gating_mode = 0.0, "equal"  # act on the better side of a known edge
    config.cooldown_seconds = 0
    config.save()
    desk = TradingDesk(instrument=eth, config=config)
    return desk, desk.open_account(account=account, position=PositionState(), start_ms=T0)


def _trade(desk, book_desk, ts, buy=0.8, sell=0.1, mid=2500.0):
    """One cycle with a model whose calibrated edge is 100 x (P(BUY) - P(SELL)) bps (tests/apps/trading/edges.py)."""
    out = ModelOutput.from_probs(model_name="cnn", model_version="1", probs=np.array([buy, sell, 1 - buy - sell]))
    output, gating = desk.mixture(with_edges({"cnn": out}), ts, mid)
    return desk.trade(book_desk, output=output, gating=gating, prediction=None, ts=ts, book=_book(mid),
                      conditions=MarketConditions(spread_bps=0.08, volatility=1e-4, completeness=0.95))


def test_it_rejects_an_order_over_the_max_notional():
    limit = RiskLimit(max_position=D("10"), max_order_notional=D("1000"))
    verdict = risk_check_order(limit=limit, side="BUY", quantity=D("0.5"), price=D("2683.81"), position=D("0"))
    assert (verdict.approved, verdict.rule) == (False, "max_order_notional")
    assert "1341.90 USD > max 1000.00 USD" in verdict.reason


def test_it_rejects_an_order_that_would_exceed_the_max_position():
    limit = RiskLimit(max_position=D("1"), max_order_notional=D("100000"))
    verdict = risk_check_order(limit=limit, side="BUY", quantity=D("0.4"), price=D("2683.81"), position=D("0.7"))
    assert (verdict.approved, verdict.rule) == (False, "max_position")


def test_an_exit_passes_even_when_the_position_is_over_the_limit():
    limit = RiskLimit(max_position=D("1"), max_order_notional=D("100000"))
    verdict = risk_check_order(limit=limit, side="SELL", quantity=D("0.4"), price=D("2683.81"), position=D("1.5"))
    assert verdict.approved


def test_the_decision_is_stored_with_its_inputs_and_the_order_fills(account, eth):
    desk, book = _desk(account, eth)
    payload = _trade(desk, book, T0)
    assert payload["action"] == "BUY" and payload["order"]["status"] == "FILLED"
    decision = Decision.objects.get(account=account, ts_event__isnull=False)
    assert decision.inputs["models"]["cnn"]["BUY"] == pytest.approx(0.8)
    assert decision.inputs["gating"]["mode"] == "equal" and decision.inputs["settings"]["margin_bps"] == 0.0
    assert decision.inputs["gating"]["why"] == {"cnn": "cnn: equal weight"}
    assert decision.inputs["edges"]["cnn"] == decision.inputs["edge_bps"] == {"BUY": pytest.approx(70.0),
                                                                              "SELL": pytest.approx(-70.0)}
    assert (decision.confidence, decision.threshold) == (pytest.approx(70.0), 0.0)  # edge and margin, bps
    assert decision.reason == "edge BUY +70.0 bps > margin 0.0 bps"
    assert decision.inputs["conditions"]["spread_bps"] == 0.08
    assert book.position.quantity == D("0.3999")  # 1000 USD / 2500.01 (best ask), floored to 1e-4


def test_an_order_over_the_max_notional_is_sized_down_to_it_not_rejected(account, eth):
    desk, book = _desk(account, eth, max_order_notional=D("500"))
    payload = _trade(desk, book, T0)
    order = Order.objects.get(account=account)
    assert payload["order"]["status"] == order.status == Order.Status.FILLED
    assert order.quantity == D("0.1999")  # 500 USD / 2500.01, floored to the lot
    assert not RiskEvent.objects.filter(kind="rejected").exists()


def test_a_session_at_its_position_limit_records_one_skip_not_a_rejection_every_cooldown(account, eth):
    desk, book = _desk(account, eth, max_position=D("0.5"))
    desk.config.cooldown_seconds = 30
    payloads = [_trade(desk, book, T0 + 1000 * s) for s in range(0, 181)]  # 3 minutes of steady BUY edge
    orders = list(Order.objects.filter(account=account).order_by("ts_event").values_list("quantity", "status"))
    assert orders == [(D("0.3999"), "FILLED"), (D("0.1001"), "FILLED")]  # the second sized down to the room left
    assert book.position.quantity == D("0.5")
    skips = list(RiskEvent.objects.filter(account=account).values_list("kind", "rule", "reason"))
    assert skips == [("skipped", "max_position",
                      "BUY stood aside: position 0.50000000 of max 0.50000000")]
    held = payloads[60:]  # from the third cooldown on, every second wants to BUY and stands aside
    assert all(p["action"] == "HOLD" and p["order"] is None for p in held)
    assert {p["reason"] for p in held} == {"BUY stood aside: max_position: position 0.50000000 of max 0.50000000"}
    assert Decision.objects.filter(account=account, filter="risk").count() == len(held) == 121
    assert book.rejections == 0 and book.skips == 1


def test_spot_is_long_only_a_sell_closes_the_long_and_never_opens_a_short(account, eth):
    desk, book = _desk(account, eth)
    flat = _trade(desk, book, T0, buy=0.1, sell=0.8)
    assert flat["action"] == "HOLD" and flat["order"] is None
    assert flat["reason"] == "SELL stood aside: spot_inventory: spot is long-only: 0.00000000 held to sell"
    _trade(desk, book, T0 + 1000, buy=0.8, sell=0.1)  # long 0.3999
    book.limit.max_order_notional = D("5000")
    sold = _trade(desk, book, T0 + 2000, buy=0.1, sell=0.8)
    assert sold["order"]["quantity"] == "0.3999" and book.position.quantity == 0
    assert Order.objects.get(account=account, side="SELL").purpose == "exit"
    assert RiskEvent.objects.filter(kind="skipped", rule="spot_inventory").count() == 1


def test_a_model_without_a_calibrated_edge_gets_weight_zero_and_the_desk_holds(account, eth):
    desk, book = _desk(account, eth)
    old = ModelOutput.from_probs(model_name="cnn", model_version="1", probs=np.array([0.0167, 0.0165, 0.9668]))
    output, gating = desk.mixture({"cnn": old}, T0, 2500.0)
    payload = desk.trade(book, output=output, gating=gating, prediction=None, ts=T0, book=_book(2500.0),
                         conditions=MarketConditions())
    assert gating["weights"] == {"cnn": 0.0} and payload["action"] == "HOLD"
    assert payload["reason"] == "HOLD: no model has weight (equal): cnn: weight 0 — no calibrated edge_bps (old checkpoint)"
    assert payload["gating"]["why"]["cnn"] == "cnn: weight 0 — no calibrated edge_bps (old checkpoint)"


def test_trading_stopped_on_the_instrument_holds_entries_and_says_why(account, eth):
    desk, book = _desk(account, eth)
    desk.config.trading_enabled = False  # what apps.trading.controls.control_trading stores
    held = _trade(desk, book, T0)
    assert held["action"] == "HOLD" and held["order"] is None and "trading stopped on ETHUSDT" in held["reason"]
    decision = Decision.objects.get(account=account)
    assert decision.filter == "trading" and decision.inputs["settings"]["trading_enabled"] is False
    desk.config.trading_enabled = True
    assert _trade(desk, book, T0 + 1000)["order"]["status"] == "FILLED"


def test_a_stop_loss_exits_the_position_with_a_reduce_only_market_order(account, eth):
    desk, book = _desk(account, eth, stop_loss=0.01)
    _trade(desk, book, T0, mid=2500.0)  # long 0.3999 at 2500.01
    desk.config.margin_bps = 50.0  # no more entries: the model's +20 bps is below it
    payload = _trade(desk, book, T0 + 1000, buy=0.4, sell=0.2, mid=2470.0)  # -1.2 %
    assert payload["stop"] == "stop_loss" and book.position.quantity == 0
    stop_order = Order.objects.get(account=account, purpose="stop_loss")
    assert stop_order.side == "SELL" and stop_order.status == "FILLED"
    assert RiskEvent.objects.filter(kind="stop", rule="stop_loss").exists()


def test_a_daily_loss_puts_the_account_in_reducing(account, eth):
    desk, book = _desk(account, eth, daily_loss_limit=D("5"))
    _trade(desk, book, T0, mid=2500.0)
    payload = _trade(desk, book, T0 + 1000, mid=2480.0)  # -8 USD on 0.4 ETH
    assert payload["risk_state"] == "REDUCING" and payload["action"] == "HOLD" and payload["order"] is None
    assert payload["reason"] == "BUY stood aside: state: trading state REDUCING: only exits pass"
    assert RiskEvent.objects.filter(kind="state", reason__contains="daily loss").exists()


def test_venue_errors_trip_the_circuit_breaker_which_halts_new_orders(account, eth, monkeypatch):
    """A live account whose venue cannot be reached (a closed loopback port): every submit is a
    venue error; the second within a minute trips the breaker and the next cycle is HALTED."""
    import socket

    from cryptography.fernet import Fernet

    from apps.trading.services import account_set_credentials

    monkeypatch.setenv("GOGO_SECRETS_KEY", Fernet.generate_key().decode())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: connections are refused
    account.mode, account.live_enabled = "live", True
    account.save()
    account_set_credentials(account=account, api_key="k", api_secret="s")
    RiskLimit.objects.update_or_create(account=account, instrument=eth, defaults={"breaker_max_errors": 2})
    config = orchestrator_config_get(instrument=eth)
    config.margin_bps, config.gating_mode = 0.0, "equal"
    config.cooldown_seconds = 0
    config.save()
    desk = TradingDesk(instrument=eth, config=config)
    desk_account = desk.open_account(account=account, position=PositionState(), start_ms=T0)
    import ccxt

    desk_account.client.exchange.urls["api"] = {k: f"http://127.0.0.1:{port}/api/v3" if isinstance(v, str) else v
                                                for k, v in ccxt.binance().urls["api"].items()}
    desk_account.client.exchange.timeout = 2_000
    first = _trade(desk, desk_account, T0)
    assert first["order"]["status"] == "NEW"  # sent, fate unknown: stays NEW for poll / reconcile
    _trade(desk, desk_account, T0 + 1000)  # second error: the breaker trips
    third = _trade(desk, desk_account, T0 + 2000)
    assert third["risk_state"] == "HALTED"
    assert RiskEvent.objects.filter(account=account, kind="breaker", rule="venue_errors").exists()


@pytest.mark.parametrize(("method", "expected"), [
    ("fixed_notional", D("0.3999")),  # the orchestrator's 1000 USD / 2500.01
    ("fixed_fraction", D("0.1999")),  # 5 % of 10000 USD equity / 2500.01
    ("atr", D("0.9999")),  # 1 % of equity / (2 ATR x 2 USD) = 25 ETH, capped at 2500 USD / 2500.01
])
def test_position_sizing_follows_the_account_method(account, eth, method, expected):
    from ml.market.events import Candle

    desk, book = _desk(account, eth, sizing=method, sizing_fraction=0.05 if method == "fixed_fraction" else 0.01,
                       max_order_notional=D("2500"), max_position=D("10"))
    candles = [Candle("ETHUSDT", "1m", T0 - 60_000 * (20 - i), 2500, 2501, 2499, 2500, 1.0) for i in range(20)]  # TR = 2
    out = ModelOutput.from_probs(model_name="cnn", model_version="1", probs=np.array([0.8, 0.1, 0.1]))
    output, gating = desk.mixture(with_edges({"cnn": out}), T0, 2500.0)
    payload = desk.trade(book, output=output, gating=gating, prediction=None, ts=T0, book=_book(2500.0),
                         conditions=MarketConditions(), candles_1m=candles)
    assert D(payload["order"]["quantity"]) == expected
