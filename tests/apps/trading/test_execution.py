"""The paper execution client: lifecycle transitions stored, idempotent submit, restart reconciliation."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from apps.trading.execution import PaperExecutionClient
from apps.trading.models import Order, OrderEvent
from apps.trading.services import OrderIntent, OrderStateError, order_create, order_transition
from ml.market.orderbook import OrderBook

pytestmark = pytest.mark.django_db
T0 = 1_723_161_540_000


def _book(bids, asks) -> OrderBook:
    book = OrderBook()
    book.apply_levels(bids, asks)
    return book


BOOK = _book([(2683.98, 22.6271), (2683.97, 3.7247)], [(2683.99, 1.6528), (2684.0, 4.0886), (2684.1, 0.0509)])


def _order(account, eth, ts=T0, side="BUY", qty="2.0", order_type="MARKET", price=None):
    intent = OrderIntent(account=account, instrument=eth, side=side, notional=D(0), ts_event_ms=ts, quantity=D(qty),
                         order_type=order_type, price=price and D(price))
    return order_create(intent=intent, quantity=D(qty))


def test_a_market_order_waits_for_its_latency_then_walks_the_book_and_every_transition_is_stored(account, eth):
    account.latency_ms = 50
    client = PaperExecutionClient(account, eth)
    order, created = _order(account, eth)
    assert created and order.client_order_id == f"gogo{account.pk}-ETHUSDT-{T0}-BE"
    assert client.submit(order, now_ms=T0, book=BOOK).fills == []  # still travelling
    (done,) = client.poll(now_ms=T0 + 1000, book=BOOK)
    order.refresh_from_db()
    # 1.6528 @ 2683.99 + 0.3472 @ 2684.00, taker fee 0.1 %
    assert [(f.price, f.quantity) for f in done.fills] == [(D("2683.99"), D("1.6528")), (D("2684.0"), D("0.3472"))]
    assert order.status == "FILLED" and order.filled_quantity == D("2.0")
    assert order.average_price == D("2683.99173600")  # (1.6528*2683.99 + 0.3472*2684) / 2
    assert list(order.events.values_list("status", flat=True)) == ["NEW", "FILLED"]


def test_a_limit_order_rests_fills_partly_then_is_canceled(account, eth):
    account.latency_ms = 0
    client = PaperExecutionClient(account, eth)
    order, _ = _order(account, eth, side="SELL", qty="1.0", order_type="LIMIT", price="2684.10")
    client.submit(order, now_ms=T0, book=BOOK)
    assert client.matcher.orders[order.client_order_id].queue_ahead == 0.0509  # visible size at 2684.10
    assert client.on_trade(now_ms=T0 + 10, price=2684.1, size=0.0509, aggressor="BUY") == []  # the queue ahead
    (done,) = client.on_trade(now_ms=T0 + 20, price=2684.1, size=0.3, aggressor="BUY")
    assert done.order.status == "PARTIALLY_FILLED" and done.fills[0].liquidity == "maker"
    client.cancel(order, now_ms=T0 + 30)
    order.refresh_from_db()
    assert order.status == "CANCELED" and order.filled_quantity == D("0.3")
    assert list(order.events.values_list("status", flat=True)) == ["NEW", "PARTIALLY_FILLED", "CANCELED"]


def test_a_retried_submit_neither_creates_nor_sends_a_second_order(account, eth):
    account.latency_ms = 0
    client = PaperExecutionClient(account, eth)
    order, _ = _order(account, eth)
    client.submit(order, now_ms=T0, book=BOOK)
    again, created = _order(account, eth)
    assert not created and again.pk == order.pk
    assert client.submit(again, now_ms=T0, book=BOOK).fills == []  # final: nothing sent
    assert Order.objects.filter(account=account).count() == 1 and order.fills.count() == 2


def test_restart_reconciliation_restores_resting_limits_and_expires_unmatched_market_orders(account, eth):
    account.latency_ms = 50
    before = PaperExecutionClient(account, eth)
    market, _ = _order(account, eth, ts=T0)
    limit, _ = _order(account, eth, ts=T0 + 1, side="BUY", qty="0.5", order_type="LIMIT", price="2683.00")
    before.submit(market, now_ms=T0)
    before.submit(limit, now_ms=T0 + 1)
    # ... the process stops here, before the next book; a new one starts:
    after = PaperExecutionClient(account, eth)
    done = after.reconcile(now_ms=T0 + 60_000)
    market.refresh_from_db()
    assert {e.order.pk for e in done} == {market.pk, limit.pk}
    assert market.status == "EXPIRED" and "restarted" in market.reject_reason
    assert [o.client_order_id for o in after.matcher.open_orders()] == [limit.client_order_id]
    after.poll(now_ms=T0 + 61_000, book=_book([(2683.0, 4.0)], [(2684.0, 1.0)]))
    assert after.matcher.orders[limit.client_order_id].queue_ahead == 4.0  # re-measured at the next book


def test_the_lifecycle_refuses_a_transition_out_of_a_final_state(account, eth):
    order, _ = _order(account, eth)
    order_transition(order=order, status="REJECTED", ts_event_ms=T0, detail="test")
    assert order_transition(order=order, status="REJECTED", ts_event_ms=T0) == []  # repeated: no-op
    with pytest.raises(OrderStateError, match="is REJECTED, cannot become FILLED"):
        order_transition(order=order, status="FILLED", ts_event_ms=T0)
    assert OrderEvent.objects.filter(order=order).count() == 2


def test_the_desk_fills_a_resting_paper_limit_from_the_seconds_trade_prints(account, eth):
    from apps.trading.desk import TradingDesk
    from apps.trading.positions import PositionState
    from apps.trading.services import orchestrator_config_get
    from ml.market.events import Trade
    from ml.models.output import ModelOutput
    from ml.orchestrator import MarketConditions

    account.latency_ms = 0
    account.save()
    desk = TradingDesk(instrument=eth, config=orchestrator_config_get(instrument=eth))
    seat = desk.open_account(account=account, position=PositionState(), start_ms=T0)
    order, _ = _order(account, eth, side="SELL", qty="1.0", order_type="LIMIT", price="2684.10")
    seat.client.submit(order, now_ms=T0, book=BOOK)  # rests behind 0.0509 at 2684.10
    hold = ModelOutput("mixture", "1", {"BUY": 0.1, "SELL": 0.1, "HOLD": 0.8}, "HOLD", 0.8)
    prints = [Trade("ETHUSDT", T0 + 300, 1, 2684.1, 0.0509, False), Trade("ETHUSDT", T0 + 600, 2, 2684.1, 0.3, False),
              Trade("ETHUSDT", T0 + 700, 3, 2683.9, 5.0, True)]  # the last is a sell: it cannot fill a SELL
    payload = desk.trade(seat, output=hold, gating={}, prediction=None, ts=T0 + 1000, book=BOOK,
                         conditions=MarketConditions(), trades=prints)
    order.refresh_from_db()
    assert payload["action"] == "HOLD"
    assert order.status == "PARTIALLY_FILLED" and order.filled_quantity == D("0.3")
    assert seat.position.quantity == D("-0.3")
