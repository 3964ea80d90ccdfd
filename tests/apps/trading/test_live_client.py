"""The ccxt live client against the replay venue's signed Binance order endpoints, on loopback.

The venue runs in its own thread and event loop; the test drives ccxt (sync) as the engine does.
"""
from __future__ import annotations

import asyncio
import threading
from decimal import Decimal as D

import pytest
from django.contrib.auth import get_user_model

from apps.market.venues.replay_orders import TEST_API_KEY, TEST_API_SECRET
from apps.market.venues.replay_server import ReplayServer
from apps.trading.execution import CcxtExecutionClient, LiveTradingDisabled, ccxt_exchange
from apps.trading.models import Order, TradingAccount
from apps.trading.services import OrderIntent, account_set_credentials, order_create
from ml.market.recording import default_spot_session

pytestmark = pytest.mark.django_db
T0 = 1_723_161_600_000


@pytest.fixture(scope="module")
def venue():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="replay-venue", daemon=True)
    thread.start()
    server = ReplayServer(default_spot_session(), speed=20, heartbeat=5.0)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(120)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@pytest.fixture
def live_account(secrets_key):
    user = get_user_model().objects.create_user("live-trader")
    account = TradingAccount.objects.create(owner=user, name="live", mode="live", venue="binance", live_enabled=True)
    return account_set_credentials(account=account, api_key=TEST_API_KEY, api_secret=TEST_API_SECRET)


@pytest.fixture
def client(venue, live_account, eth):
    import ccxt

    urls = venue.ccxt_urls(ccxt.binance().urls["api"])
    return CcxtExecutionClient(live_account, eth, exchange=ccxt_exchange(live_account, urls=urls))


def _order(account, eth, ts, side="BUY", qty="0.5", order_type="MARKET", price=None) -> Order:
    intent = OrderIntent(account=account, instrument=eth, side=side, notional=D(0), ts_event_ms=ts,
                         quantity=D(qty), order_type=order_type, price=price and D(price))
    return order_create(intent=intent, quantity=D(qty))[0]


def test_credentials_are_stored_encrypted_and_a_live_client_needs_the_opt_in(live_account, eth, secrets_key):
    assert TEST_API_SECRET not in live_account.api_secret_encrypted and live_account.has_credentials
    live_account.live_enabled = False
    with pytest.raises(LiveTradingDisabled):
        CcxtExecutionClient(live_account, eth)
    paper = TradingAccount.objects.create(owner=live_account.owner, name="paper")
    with pytest.raises(LiveTradingDisabled):
        ccxt_exchange(paper)


def test_a_market_order_fills_against_the_venue_book_with_the_signed_api(client, venue, live_account, eth):
    order = _order(live_account, eth, T0)
    best_ask = venue.truth_book("ETHUSDT").best_ask()
    done = client.submit(order, now_ms=T0)
    order.refresh_from_db()
    assert order.status == "FILLED" and order.filled_quantity == D("0.5")
    assert order.venue_order_id and order.client_order_id in venue.order_api.by_client_id
    assert float(order.average_price) >= best_ask - 1e-9 or venue.truth_book("ETHUSDT").best_ask() != best_ask
    assert len(done.fills) == 1 and done.fills[0].quantity == D("0.5")
    # The venue charged 0.1 % in ETH (the received asset); stored in USD at the fill price.
    assert float(done.fills[0].fee) == pytest.approx(0.5 * 0.001 * float(order.average_price), rel=1e-6)
    assert [e.status for e in order.events.order_by("seq")] == ["NEW", "FILLED"]


def test_a_lost_response_is_resolved_by_client_order_id_and_a_retry_never_doubles(client, venue, live_account, eth):
    order = _order(live_account, eth, T0 + 1000, side="SELL", qty="0.2")
    before = venue.order_api.stats["orders"]
    venue.order_api.lose_responses(1)
    client.submit(order, now_ms=T0 + 1000)  # 503 after the venue executed it: the client asks by id
    order.refresh_from_db()
    assert order.status == "FILLED" and venue.order_api.stats["lost_responses"] == 1
    again, created = order_create(intent=OrderIntent(account=live_account, instrument=eth, side="SELL", notional=D(0),
                                                     ts_event_ms=T0 + 1000, quantity=D("0.2")), quantity=D("0.2"))
    assert not created and again.pk == order.pk
    client.submit(again, now_ms=T0 + 2000)  # a retried submit of the same order
    assert venue.order_api.stats["orders"] == before + 1  # the venue saw one order
    assert order.fills.count() == 1


def test_a_duplicate_client_order_id_at_the_venue_is_adopted_not_doubled(client, venue, live_account, eth):
    price = venue.truth_book("ETHUSDT").best_bid() - 50  # far from the book: rests
    order = _order(live_account, eth, T0 + 3000, qty="0.1", order_type="LIMIT", price=f"{price:.2f}")
    client.submit(order, now_ms=T0 + 3000)
    order.refresh_from_db()
    assert order.status == "NEW"
    order.venue_order_id = ""  # as if the reply was lost before the id was stored
    n = venue.order_api.stats["orders"]
    client.submit(order, now_ms=T0 + 3500)  # venue: -2010 Duplicate order sent. -> adopt
    order.refresh_from_db()
    assert venue.order_api.stats["orders"] == n and order.venue_order_id


def test_restart_reconciliation_updates_orders_the_venue_changed_meanwhile(client, venue, live_account, eth):
    price = venue.truth_book("ETHUSDT").best_bid() - 50
    order = _order(live_account, eth, T0 + 4000, qty="0.1", order_type="LIMIT", price=f"{price:.2f}")
    client.submit(order, now_ms=T0 + 4000)
    # While we are "down", the order is canceled at the venue (e.g. by hand on the exchange's site).
    venue_order = venue.order_api.orders[venue.order_api.by_client_id[order.client_order_id]]
    venue_order["status"] = "CANCELED"
    import ccxt

    fresh = CcxtExecutionClient(live_account, eth, exchange=ccxt_exchange(
        live_account, urls=venue.ccxt_urls(ccxt.binance().urls["api"])))  # a new process
    done = fresh.reconcile(now_ms=T0 + 60_000)
    order.refresh_from_db()
    assert order.client_order_id in {e.order.client_order_id for e in done}
    assert order.status == "CANCELED"
    assert [e.status for e in order.events.order_by("seq")] == ["NEW", "CANCELED"]


def test_cancel_goes_to_the_venue_and_a_bad_signature_is_refused(client, venue, live_account, eth):
    import ccxt

    price = venue.truth_book("ETHUSDT").best_bid() - 50
    order = _order(live_account, eth, T0 + 5000, qty="0.1", order_type="LIMIT", price=f"{price:.2f}")
    client.submit(order, now_ms=T0 + 5000)
    client.cancel(order, now_ms=T0 + 6000)
    order.refresh_from_db()
    assert order.status == "CANCELED"
    assert venue.order_api.orders[venue.order_api.by_client_id[order.client_order_id]]["status"] == "CANCELED"
    bad = ccxt.binance({"apiKey": TEST_API_KEY, "secret": "wrong", "options": {
        "defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}})
    bad.urls["api"] = venue.ccxt_urls(bad.urls["api"])
    with pytest.raises(ccxt.AuthenticationError, match="Signature for this request is not valid"):
        bad.fetch_balance()
