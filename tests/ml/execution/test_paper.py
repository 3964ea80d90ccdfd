import pytest

from ml.execution.paper import InsufficientLiquidity, walk_book


def test_it_fills_inside_the_best_level_at_one_price():
    fills = walk_book([(100.0, 2.0), (101.0, 5.0)], 1.5, fee_rate=0.001)
    assert [(f.price, f.size) for f in fills] == [(100.0, 1.5)]
    assert fills[0].fee == pytest.approx(0.15)


def test_it_walks_several_levels_best_first():
    fills = walk_book([(100.0, 1.0), (101.0, 1.0), (102.0, 5.0)], 2.5, fee_rate=0.001)
    assert [(f.price, f.size) for f in fills] == [(100.0, 1.0), (101.0, 1.0), (102.0, 0.5)]
    notional = sum(f.price * f.size for f in fills)
    assert notional == pytest.approx(252.0)
    assert sum(f.fee for f in fills) == pytest.approx(0.252)


def test_it_refuses_more_than_the_book_holds():
    with pytest.raises(InsufficientLiquidity, match="holds 3.00000000 of 4.00000000"):
        walk_book([(100.0, 1.0), (101.0, 2.0)], 4.0, fee_rate=0.0)


def test_it_rejects_a_non_positive_quantity():
    with pytest.raises(ValueError, match="quantity must be > 0"):
        walk_book([(100.0, 1.0)], 0.0, fee_rate=0.0)


# ---- PaperMatcher against the recorded ETHUSDT book of 2024-08-08 23:59:00 and the trades after it

from ml.execution.paper import PaperMatcher  # noqa: E402
from ml.market.events import Trade  # noqa: E402

SECOND = 1723161540000  # the ETH book at the end of this second, checked by hand below


@pytest.fixture(scope="module")
def recorded():
    from ml.market.recording import default_spot_session
    from ml.market.replay import ReplayVenue
    from ml.market.session import InstrumentSpec, MarketSession

    files = {"ETHUSDT": default_spot_session()["ETHUSDT"]}
    session = MarketSession(ReplayVenue(files), [InstrumentSpec("ETHUSDT", 1.0)])
    book = next(r.books["ETHUSDT"].copy() for r in session.seconds() if r.ts == SECOND)
    trades = [e for e in ReplayVenue(files).events()
              if isinstance(e, Trade) and SECOND + 1000 <= e.ts_event < SECOND + 2000]
    return book, trades


def test_the_recorded_book_is_the_one_checked_by_hand(recorded):
    book, _ = recorded
    assert book.levels("ask", 4) == [(2683.99, 1.6528), (2684.0, 4.0886), (2684.1, 0.0509), (2684.15, 16.0098)]
    assert book.levels("bid", 2) == [(2683.98, 22.6271), (2683.97, 3.7247)]


def test_a_market_buy_walks_four_recorded_ask_levels(recorded):
    book, _ = recorded
    m = PaperMatcher(taker_fee=0.001)
    m.submit(client_order_id="a", side="BUY", quantity=6.0, now_ms=SECOND)
    (update,) = m.on_book(SECOND, book.levels("bid", 50), book.levels("ask", 50))
    # 1.6528 @ 2683.99 + 4.0886 @ 2684.00 + 0.0509 @ 2684.10 + (6 - 5.7923 = 0.2077) @ 2684.15
    assert [(f.price, round(f.size, 8)) for f in update.fills] == [
        (2683.99, 1.6528), (2684.0, 4.0886), (2684.1, 0.0509), (2684.15, 0.2077)]
    notional = 4436.098672 + 10973.8024 + 136.62069 + 557.497955  # = 16104.019717 USD
    assert sum(f.price * f.size for f in update.fills) == pytest.approx(notional, abs=1e-6)
    assert sum(f.fee for f in update.fills) == pytest.approx(16.104019717, abs=1e-8)
    assert update.status == "FILLED"


def test_a_market_order_larger_than_the_book_fills_partly_and_expires():
    m = PaperMatcher()
    m.submit(client_order_id="a", side="SELL", quantity=3.0, now_ms=0)
    (update,) = m.on_book(0, [(100.0, 1.0), (99.0, 1.0)], [])
    assert update.status == "EXPIRED" and update.order.filled == 2.0


def test_latency_delays_the_match_to_the_first_book_after_arrival(recorded):
    book, _ = recorded
    m = PaperMatcher(latency_ms=50)
    order = m.submit(client_order_id="a", side="BUY", quantity=0.1, now_ms=SECOND)
    assert m.on_book(SECOND, book.levels("bid", 5), book.levels("ask", 5)) == []
    assert order.status == "NEW"
    (update,) = m.on_book(SECOND + 1000, book.levels("bid", 5), book.levels("ask", 5))
    assert update.status == "FILLED"


def test_a_resting_limit_sell_waits_for_the_recorded_queue_ahead_then_fills_partly(recorded):
    book, trades = recorded
    m = PaperMatcher(maker_fee=0.0)
    order = m.submit(client_order_id="s", side="SELL", quantity=1.0, now_ms=SECOND, order_type="LIMIT", price=2684.15)
    assert m.on_book(SECOND, book.levels("bid", 50), book.levels("ask", 50)) == []
    assert order.queue_ahead == 16.0098  # the visible size at 2684.15 when it started resting
    updates = []
    for t in trades:
        got = m.on_trade(t.ts_event, t.price, t.size, "SELL" if t.is_buyer_maker else "BUY")
        updates += [(t.trade_id, u) for u in got]
    # Buyer-taker prints at 2684.15 (1.6 + 0.4 + 0.8 + 2.331 + ... + 0.03) sum to exactly 16.0098
    # by trade 1520543660; the next print, 0.0057 (trade 1520543661), is the first to reach us.
    first_id, first = updates[0]
    assert first_id == 1520543661
    assert (first.status, first.fills[0].size, first.fills[0].liquidity) == ("PARTIALLY_FILLED", 0.0057, "maker")
    assert order.queue_ahead == 0


def test_a_marketable_limit_buy_takes_up_to_its_price_and_rests_the_rest(recorded):
    book, _ = recorded
    m = PaperMatcher(taker_fee=0.001)
    order = m.submit(client_order_id="b", side="BUY", quantity=2.0, now_ms=SECOND, order_type="LIMIT", price=2683.99)
    (update,) = m.on_book(SECOND, book.levels("bid", 50), book.levels("ask", 50))
    assert [(f.price, f.size, f.liquidity) for f in update.fills] == [(2683.99, 1.6528, "taker")]
    assert update.status == "PARTIALLY_FILLED" and order.queue_ahead == 0.0  # a new best bid level
    assert m.on_trade(SECOND + 1, 2683.99, 0.5, "SELL")[0].status == "FILLED"
    assert m.cancel("b") is None  # final orders are not canceled


def test_a_retried_submit_returns_the_same_order_and_a_cancel_ends_a_resting_one():
    m = PaperMatcher()
    first = m.submit(client_order_id="x", side="BUY", quantity=1.0, now_ms=0, order_type="LIMIT", price=90.0)
    assert m.submit(client_order_id="x", side="BUY", quantity=1.0, now_ms=5) is first
    m.on_book(0, [(90.0, 3.0)], [(91.0, 1.0)])
    assert first.queue_ahead == 3.0
    assert m.cancel("x").status == "CANCELED" and m.open_orders() == []
