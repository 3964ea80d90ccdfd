from decimal import Decimal as D

import pytest
from django.contrib.auth import get_user_model

from apps.market.models import Instrument
from apps.risk.models import RiskEvent, RiskLimit
from apps.risk.services import risk_check_order
from apps.trading.models import Order
from apps.trading.positions import PositionState
from apps.trading.services import OrderIntent, account_ensure_paper, order_submit_paper

pytestmark = pytest.mark.django_db
ASKS = [(2683.81, 10.0), (2683.82, 5.0)]


@pytest.fixture
def account():
    user = get_user_model().objects.create_user("trader")
    return account_ensure_paper(owner=user)


@pytest.fixture
def eth():
    return Instrument.objects.get(venue="binance", symbol="ETHUSDT")


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


def test_a_rejected_order_is_stored_with_its_reason_and_a_risk_event(account, eth):
    RiskLimit.objects.create(account=account, instrument=eth, max_position=D("1"), max_order_notional=D("500"))
    intent = OrderIntent(account=account, instrument=eth, side="BUY", notional=D("1000"), ts_event_ms=1723161300000)
    state = PositionState()
    order = order_submit_paper(intent=intent, levels=ASKS, state=state)
    assert order.status == Order.Status.REJECTED
    assert order.reject_reason.startswith("order notional 999.")
    event = RiskEvent.objects.get(order=order)
    assert (event.rule, event.kind) == ("max_order_notional", "rejected")
    assert state.quantity == 0 and order.fills.count() == 0


def test_an_approved_order_fills_against_the_book_and_a_retry_does_not_double(account, eth):
    intent = OrderIntent(account=account, instrument=eth, side="BUY", notional=D("1000"), ts_event_ms=1723161300000)
    state = PositionState()
    order = order_submit_paper(intent=intent, levels=ASKS, state=state)
    assert order.status == Order.Status.FILLED
    assert order.quantity == D("0.3726")  # floor(1000 / 2683.81, 1e-4)
    assert order.average_price == D("2683.81000000")
    fee = order.fills.get().fee
    assert fee == D("0.99998761")  # 0.3726 * 2683.81 * 0.001 = 0.999987606
    again = order_submit_paper(intent=intent, levels=ASKS, state=PositionState())
    assert again.pk == order.pk
    assert Order.objects.filter(account=account).count() == 1
