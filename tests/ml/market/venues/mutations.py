"""Hypothesis strategies for parser property tests (not a test module).

``mutated(message)`` draws one damaged copy of a real message: a field dropped, a value replaced
by another type or an impossible number, a list shuffled / emptied / truncated, or the JSON
text cut short or with a byte flipped. ``assert_valid_events`` is the property every parser
keeps: what it returns is None or events with finite prices > 0 and finite sizes >= 0.
"""
from __future__ import annotations

import math
from typing import Any

import orjson
from hypothesis import strategies as st

from ml.market.events import Candle, OrderBookDelta, OrderBookSnapshot, Trade

ODD_STRINGS = st.sampled_from([
    "", " ", "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1", "0", "-0.0", "1e-400", "abc", "1_000",
    "0x10", "--5", "²", "١٢", "٣.٥", "65114.2 ", "9" * 400, "2026-13-01T00:00:00Z", "2026-08-09T21:05:42.5Z",
    "Buy", "Sell", "snapshot", "delta", "update", "bid", "offer", "b", "s", "BTC-USDT", "XBT/USD",
])
LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400)]), st.floats(), ODD_STRINGS, st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple = (), limit: int = 4000) -> list[tuple]:
    """Every path (keys / indices) into a decoded JSON value, root excluded, at most ``limit``."""
    out: list[tuple] = []
    stack = [(value, prefix)]
    while stack and len(out) < limit:
        node, path = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            out.append((*path, key))
            stack.append((child, (*path, key)))
    return out


def _parent(root: Any, path: tuple) -> Any:
    node = root
    for key in path[:-1]:
        node = node[key]
    return node


@st.composite
def mutated(draw: st.DrawFn, message: Any) -> Any:
    """A damaged deep copy of ``message`` (a decoded JSON value), or its damaged JSON bytes."""
    text = orjson.dumps(message)
    op = draw(st.sampled_from(["drop", "replace", "replace", "shuffle", "empty", "truncate_list",
                               "truncate_text", "flip_byte", "stringify"]))
    if op == "truncate_text":
        return text[: draw(st.integers(0, len(text) - 1))]
    if op == "flip_byte":
        i = draw(st.integers(0, len(text) - 1))
        return text[:i] + bytes([draw(st.integers(0, 255))]) + text[i + 1:]
    copy = orjson.loads(text)
    paths = _paths(copy)
    if not paths:
        return draw(JSON_VALUES)
    path = draw(st.sampled_from(paths))
    parent, key = _parent(copy, path), path[-1]
    if op == "drop":
        del parent[key]
    elif op == "replace":
        parent[key] = draw(JSON_VALUES)
    elif op == "stringify":
        parent[key] = orjson.dumps(parent[key]).decode()
    elif isinstance(parent[key], list) and parent[key]:
        items = parent[key]
        if op == "shuffle":
            parent[key] = draw(st.permutations(items))
        elif op == "empty":
            parent[key] = []
        else:
            parent[key] = items[: draw(st.integers(0, len(items) - 1))]
    elif isinstance(parent[key], dict) and op == "shuffle":
        parent[key] = dict(draw(st.permutations(list(parent[key].items()))))
    else:
        parent[key] = draw(JSON_VALUES)
    return copy


JSON_TEXTS = st.recursive(  # what orjson can write: 64-bit integers, no nan / inf
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
              st.floats(allow_nan=False, allow_infinity=False), ODD_STRINGS, st.text(max_size=12)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=8,
).map(orjson.dumps)
RANDOM_PAYLOADS = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    JSON_TEXTS,
    st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=6),
)


def _finite_price(value: float) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def _finite_size(value: float) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value >= 0


def assert_valid_event(event: Any) -> None:
    """Finite prices, finite sizes >= 0, integer ids and times, a non-empty symbol."""
    assert isinstance(event.symbol, str) and event.symbol
    if isinstance(event, Trade):
        assert _finite_price(event.price) and _finite_size(event.size), event
        assert isinstance(event.ts_event, int) and isinstance(event.trade_id, int)
        assert isinstance(event.is_buyer_maker, bool)
    elif isinstance(event, OrderBookDelta | OrderBookSnapshot):
        for price, size in event.bids + event.asks:
            assert _finite_price(price) and _finite_size(size), event
    elif isinstance(event, Candle):
        assert all(_finite_price(v) for v in (event.open, event.high, event.low, event.close)), event
        assert _finite_size(event.volume) and _finite_size(event.quote_volume), event
        assert isinstance(event.open_time, int)
    else:
        raise AssertionError(f"not a market event: {event!r}")
