"""Venue symbols become our instrument symbols."""
from __future__ import annotations

import pytest

from ml.market.errors import MalformedMessage
from ml.market.venues.symbols import normalize_symbol


@pytest.mark.parametrize(("venue_symbol", "ours"), [
    ("BTCUSDT", "BTCUSDT"),  # Binance, Bybit, MEXC
    ("btcusdt", "BTCUSDT"),
    ("BTC-USDT", "BTCUSDT"),  # OKX spot, Coinbase
    ("ETH-USD", "ETHUSD"),
    ("XBT/USD", "BTCUSD"),  # Kraken v1
    ("KSM/XBT", "KSMBTC"),
    ("XDG/USD", "DOGEUSD"),
    ("BTC_USDT", "BTCUSDT"),
    ("BTC-USDT-SWAP", "BTCUSDT"),  # OKX perpetual
    ("UNI-USD-SWAP", "UNIUSD"),
    ("BTC-USDT-PERP", "BTCUSDT"),  # cryptofeed's perpetual name
    ("BTC-USD-220527", "BTCUSD_220527"),  # OKX delivery future, as Binance COIN-M names it
])
def test_it_maps_venue_symbols_to_ours(venue_symbol, ours):
    assert normalize_symbol(venue_symbol) == ours


@pytest.mark.parametrize("bad", ["", "BTC-", "BTC USDT", "BTC-ÜSD", 42])
def test_it_rejects_what_is_not_a_symbol(bad):
    with pytest.raises(MalformedMessage):
        normalize_symbol(bad)
