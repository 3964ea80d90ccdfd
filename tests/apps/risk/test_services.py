from decimal import Decimal as D

import numpy as np
import pytest
from django.contrib.auth import get_user_model

from apps.market.models import Instrument
from apps.risk.models import RiskEvent, RiskLimit, RiskState
from apps.risk.services import risk_check_order, risk_kill_switch_set
from apps.trading.desk import TradingDesk
from apps.trading.models import Decision, Order
from apps.trading.positions import PositionState
from apps.trading.services import account_ensure_paper, orchestrator_config_get
from ml.market.orderbook import OrderBook
from ml.models.output import ModelOutput
from ml.orchestrator import MarketConditions

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
    config.buy_threshold = config.sell_threshold = 0.0
    config.cooldown_seconds = 0
    config.save()
    desk = TradingDesk(instrument=eth, config=config)
    return desk, desk.open_account(account=account, position=PositionState(), start_ms=T0)


def _trade(desk, book_desk, ts, buy=0.8, sell=0.1, mid=2500.0):
    out = ModelOutput.from_probs(model_name="cnn", model_version="1", probs=np.array([buy, sell, 1 - buy - sell]))
    output, gating = desk.mixture({"cnn": out}, ts, mid)
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
    assert decision.inputs["gating"]["mode"] == "equal-fallback" and decision.inputs["settings"]["buy_threshold"] == 0.0
    assert decision.inputs["conditions"]["spread_bps"] == 0.08
    assert book.position.quantity == D("0.3999")  # 1000 USD / 2500.01 (best ask), floored to 1e-4


def test_a_rejected_order_is_stored_with_its_reason_and_a_risk_event(account, eth):
    desk, book = _desk(account, eth, max_order_notional=D("500"))
    payload = _trade(desk, book, T0)
    order = Order.objects.get(account=account)
    assert payload["order"]["status"] == order.status == Order.Status.REJECTED
    assert order.reject_reason.startswith("order notional 999.")
    event = RiskEvent.objects.get(order=order)
    assert (event.rule, event.kind) == ("max_order_notional", "rejected")
    assert book.position.quantity == 0 and order.fills.count() == 0
    events = list(order.events.order_by("seq").values_list("seq", "status", "filled_quantity", "detail", "ts_event"))
    assert events == [(0, "NEW", 0, "MARKET BUY 0.3999", order.ts_event),
                      (1, "REJECTED", 0, order.reject_reason, order.ts_event)]
    assert not book.risk.orders and book.risk.position == 0  # a refused order counts toward no limit


def test_the_kill_switch_halts_new_orders_at_the_next_cycle_while_an_exit_still_passes(account, eth):
    desk, book = _desk(account, eth)
    _trade(desk, book, T0)  # long 0.3999
    risk_kill_switch_set(account=account, on=True, by="trader")
    halted = _trade(desk, book, T0 + 1000)  # another BUY: refused by the state rule
    assert halted["risk_state"] == "HALTED" and halted["order"]["status"] == "REJECTED"
    assert "HALTED" in halted["order"]["reason"]
    exit_ = _trade(desk, book, T0 + 2000, buy=0.1, sell=0.8)  # SELL: a reduce-only exit of the long, passes
    assert exit_["order"]["status"] == "FILLED" and book.position.quantity == 0
    assert Order.objects.get(account=account, status="FILLED", side="SELL").purpose == "exit"
    kinds = set(RiskEvent.objects.filter(account=account).values_list("kind", flat=True))
    assert {"kill_switch", "state", "rejected"} <= kinds
    assert RiskState.objects.get(account=account).state == "HALTED"


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
    desk.config.buy_threshold = desk.config.sell_threshold = 1.0  # no more entries
    payload = _trade(desk, book, T0 + 1000, mid=2470.0)  # -1.2 %
    assert payload["stop"] == "stop_loss" and book.position.quantity == 0
    stop_order = Order.objects.get(account=account, purpose="stop_loss")
    assert stop_order.side == "SELL" and stop_order.status == "FILLED"
    assert RiskEvent.objects.filter(kind="stop", rule="stop_loss").exists()


def test_a_daily_loss_puts_the_account_in_reducing(account, eth):
    desk, book = _desk(account, eth, daily_loss_limit=D("5"))
    _trade(desk, book, T0, mid=2500.0)
    payload = _trade(desk, book, T0 + 1000, mid=2480.0)  # -8 USD on 0.4 ETH
    assert payload["risk_state"] == "REDUCING" and payload["order"]["status"] == "REJECTED"
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
    config.buy_threshold = config.sell_threshold = 0.0
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
    output, gating = desk.mixture({"cnn": out}, T0, 2500.0)
    payload = desk.trade(book, output=output, gating=gating, prediction=None, ts=T0, book=_book(2500.0),
                         conditions=MarketConditions(), candles_1m=candles)
    assert D(payload["order"]["quantity"]) == expected
