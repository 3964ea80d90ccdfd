"""ccxt.pro's binance connects to the replay venue exactly as to the exchange (URLs overridden)."""
from __future__ import annotations

import asyncio

import ccxt
import ccxt.pro as ccxtpro
import pytest


@pytest.fixture
async def exchange(server):
    ex = ccxtpro.binance({
        "enableRateLimit": False,
        "timeout": 10_000,
        "options": {
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"]},  # spot exchangeInfo only, no fapi/dapi
            "fetchCurrencies": False,  # sapi capital/config needs keys
            "fetchMargins": False,
            "watchOrderBookLimit": 1000,
        },
    })
    ex.urls["api"] = server.ccxt_urls(ex.urls["api"])
    try:
        yield ex
    finally:
        await ex.close()


async def test_ccxt_loads_markets_from_the_recorded_exchange_info(exchange):
    markets = await asyncio.wait_for(exchange.load_markets(), 20)
    eth = markets["ETH/USDT"]
    assert eth["id"] == "ETHUSDT" and eth["spot"]
    assert eth["precision"]["price"] == 0.01


async def test_ccxt_order_book_equals_the_venue_truth(server, exchange):
    await asyncio.wait_for(exchange.load_markets(), 20)

    await asyncio.wait_for(exchange.watch_order_book("ETH/USDT"), 15)
    # Freeze the venue, let ccxt read what is in flight, then copy both books in this task.
    server.pause()
    try:
        async with asyncio.timeout(15):
            while (book := exchange.orderbooks["ETH/USDT"])["nonce"] \
                    != server.truth_update_id("ETHUSDT"):
                await exchange.watch_order_book("ETH/USDT")
        bids = [tuple(level) for level in book["bids"][:50]]
        asks = [tuple(level) for level in book["asks"][:50]]
        truth = server.truth_book("ETHUSDT").copy()
    finally:
        server.resume()
    assert bids[0] == (truth.best_bid(), truth.levels("bid", 1)[0][1])
    assert asks[0] == (truth.best_ask(), truth.levels("ask", 1)[0][1])
    assert bids == truth.levels("bid", 50)
    assert asks == truth.levels("ask", 50)
    assert server.stats["rest_requests"] >= 2  # exchangeInfo + the depth snapshot


async def test_ccxt_trades_carry_the_recorded_prices(server, exchange):
    await asyncio.wait_for(exchange.load_markets(), 20)
    recorded = {str(t.trade_id): t for t in server.recorded_trades("ETHUSDT")}
    trades = await asyncio.wait_for(exchange.watch_trades("ETH/USDT"), 15)
    assert trades
    for trade in trades:
        source = recorded[trade["id"]]
        assert trade["price"] == source.price
        assert trade["amount"] == source.size
        assert trade["timestamp"] == source.ts_event
        assert trade["side"] == ("sell" if source.is_buyer_maker else "buy")


async def test_ccxt_reconnects_after_a_server_shutdown(server, exchange):
    await asyncio.wait_for(exchange.load_markets(), 20)
    await asyncio.wait_for(exchange.watch_trades("ETH/USDT"), 15)
    assert await server.shutdown_message() == 1
    errors = []
    async with asyncio.timeout(15):
        while server.stats["connections"] < 2:  # ccxt.pro opens a new socket on the next watch
            try:
                await exchange.watch_trades("ETH/USDT")
            except ccxt.NetworkError as exc:
                errors.append(str(exc))
    trades = await asyncio.wait_for(exchange.watch_trades("ETH/USDT"), 15)
    assert trades and server.faults["shutdown_messages"] == 1
    assert all("1001" in e or "closed" in e.lower() for e in errors), errors
