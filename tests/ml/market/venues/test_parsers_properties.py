"""Property tests of every venue parser: whatever arrives, the parser returns None or valid events,
or raises MalformedMessage, never anything else.

Inputs: random bytes / text / JSON, and damaged copies of real recorded messages (BYBIT, OKX,
COINBASE, KRAKEN samples; MEXC from its documented examples, having no recording).
"""
from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.market.errors import MalformedMessage
from ml.market.venues import bybit, coinbase, kraken, mexc, okx
from tests.ml.market.venues.mutations import RANDOM_PAYLOADS, assert_valid_event, mutated
from tests.ml.market.venues.test_mexc import DEALS, DEPTH

PARSERS: dict[str, Callable] = {
    "BYBIT": bybit.parse_message, "OKX": okx.parse_message, "COINBASE": coinbase.parse_message,
    "KRAKEN": kraken.parse_message, "MEXC": mexc.parse_message,
}
# Substrings picking one real message of each kind from the recordings.
KINDS = {
    "BYBIT": ['"type":"snapshot","ts"', '"type":"delta"', '"topic":"publicTrade.ETHUSDT"',
              '"confirm":true', '"topic":"tickers.'],
    "OKX": ['"action":"snapshot"', '"action":"update"', '"channel":"trades","instId":"BTC-USDT"}', '"event":"'],
    "COINBASE": ['"type":"snapshot","product_id"', '"type":"update","product_id"', '"channel":"market_trades"',
                 '"channel":"candles"', '"channel":"heartbeats"'],
    "KRAKEN": ['{"as":', '{"a":', '{"b":', '"trade","XMR/USD"', '"event":"heartbeat"'],
}
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _trimmed(message):
    """A real book message cut to 3 levels a side, so mutations hit its other fields more often."""
    def cut(node):
        if isinstance(node, dict):
            return {k: cut(v)[:3] if isinstance(v, list) and len(v) > 3 else cut(v) for k, v in node.items()}
        if isinstance(node, list):
            return [cut(v) for v in node]
        return node

    return cut(message)


@pytest.fixture(scope="module")
def samples(ws_sample) -> dict[str, list]:
    out: dict[str, list] = {"MEXC": [DEALS, DEPTH]}
    for venue, needles in KINDS.items():
        frames = ws_sample(venue)
        messages = [next(f.json() for f in frames if needle in f.data) for needle in needles]
        # Whole messages, except books over 20 kB (Coinbase's snapshot): those only trimmed.
        out[venue] = [m for m in messages if len(orjson.dumps(m)) < 20_000] + [_trimmed(m) for m in messages[:2]]
    return out


def check(parse: Callable, payload) -> None:
    try:
        events = parse(payload)
    except MalformedMessage:
        return
    assert events is None or isinstance(events, list)
    for event in events or ():
        assert_valid_event(event)


def test_the_chosen_real_messages_parse(samples):
    for venue, messages in samples.items():
        results = [PARSERS[venue](m) for m in messages]
        assert any(results), venue  # the mutations start from messages that do parse
        for events in results:
            for event in events or ():
                assert_valid_event(event)


@pytest.mark.parametrize("venue", sorted(PARSERS))
@SETTINGS
@given(payload=RANDOM_PAYLOADS)
def test_random_input_parses_or_raises_malformed_message(venue, payload):
    check(PARSERS[venue], payload)


@pytest.mark.parametrize("venue", sorted(PARSERS))
@SETTINGS
@given(data=st.data())
def test_damaged_real_messages_parse_to_valid_events_or_raise_malformed_message(venue, samples, data):
    message = data.draw(st.sampled_from(samples[venue]))
    check(PARSERS[venue], data.draw(mutated(message)))
