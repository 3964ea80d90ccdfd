"""Property tests of the Binance parser and the recording reader: whatever arrives, they give valid
events or a MalformedMessage (the reader: a counted, skipped line), never another exception.

Inputs: random bytes / text / JSON, and damaged copies of real lines of the Binance recordings.
"""
from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.market.binance import parse_message
from ml.market.errors import MalformedMessage
from ml.market.recording import read_recording
from tests.ml.market.venues.mutations import RANDOM_PAYLOADS, assert_valid_event, mutated

SPOT_ETH = "binance_spot/ethusdt_20240808.gz"
USDM_ETH = "binance_usdm/ethusdt_20240808.gz"
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _starts(prefix: bytes):
    return lambda payload: payload.startswith(prefix)


@pytest.fixture(scope="module")
def messages(recorded_line) -> list:
    """Real messages of every kind; the 1000-level snapshots cut to 3 levels a side."""
    lines = [
        recorded_line(SPOT_ETH, _starts(b'{"stream":"ethusdt@depth@100ms"')),
        recorded_line(SPOT_ETH, _starts(b'{"stream":"ethusdt@trade"')),
        recorded_line(SPOT_ETH, _starts(b'{"stream":"ethusdt@bookTicker"')),
        recorded_line(USDM_ETH, _starts(b'{"stream":"ethusdt@depth@0ms"')),
        recorded_line(USDM_ETH, _starts(b'{"stream":"ethusdt@trade"')),
    ]
    out = [orjson.loads(line) for line in lines]
    for path in (SPOT_ETH, USDM_ETH):
        snapshot = orjson.loads(recorded_line(path, _starts(b'{"lastUpdateId"')))
        snapshot["bids"], snapshot["asks"] = snapshot["bids"][:3], snapshot["asks"][:3]
        out.append(snapshot)
    out.append(out[0]["data"])  # a bare payload, no combined-stream wrapper
    return out


def check(payload) -> None:
    try:
        event = parse_message(payload, symbol="ETHUSDT")  # symbol: for snapshots, which carry none
    except MalformedMessage:
        return
    if event is not None:
        assert_valid_event(event)


def test_the_chosen_real_messages_parse(messages):
    events = [parse_message(m, symbol="ETHUSDT") for m in messages]

    assert [type(e).__name__ for e in events] == [
        "OrderBookDelta", "Trade", "NoneType", "OrderBookDelta", "Trade", "OrderBookSnapshot",
        "OrderBookSnapshot", "OrderBookDelta"]


@SETTINGS
@given(payload=RANDOM_PAYLOADS)
def test_random_input_parses_or_raises_malformed_message(payload):
    check(payload)


@SETTINGS
@given(data=st.data())
def test_damaged_real_messages_parse_to_valid_events_or_raise_malformed_message(messages, data):
    check(data.draw(mutated(data.draw(st.sampled_from(messages)))))


def test_impossible_numbers_are_malformed(messages):
    """Found by the property test: "NaN" / "1e999" prices, huge integers and 2-character
    strings as levels used to parse into events with nan / inf prices or made-up levels."""
    trade, depth = orjson.loads(orjson.dumps(messages[1])), orjson.loads(orjson.dumps(messages[0]))
    for bad in ("NaN", "1e999", "-inf", 10**400):
        trade["data"]["p"] = bad
        with pytest.raises(MalformedMessage, match="field 'p'"):
            parse_message(trade)
    trade["data"]["p"], trade["data"]["q"] = "2683.8", "-1"
    with pytest.raises(MalformedMessage, match="field 'q'"):
        parse_message(trade)
    depth["data"]["b"] = ["12"]
    with pytest.raises(MalformedMessage, match=r"field 'b' must hold \[price, qty\]"):
        parse_message(depth)


LINE_BYTES = st.binary(max_size=120).map(lambda b: b.replace(b"\n", b" ").replace(b"\r", b" "))


@st.composite
def recording_lines(draw, messages) -> list[bytes]:
    """Lines of a recording: ``<ns timestamp> <json>`` from damaged real messages, or random bytes."""
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            payload = draw(mutated(draw(st.sampled_from(messages))))
            if not isinstance(payload, bytes):  # the stdlib writes what orjson refuses (2**70, NaN)
                payload = json.dumps(payload).encode()
            head = draw(st.sampled_from([b"1723161254036052868", b"1680652800004107", b"", b"x", b"-5"]))
            line = head + b" " + payload
        else:
            line = draw(LINE_BYTES)
        lines.append(line.replace(b"\n", b" ").replace(b"\r", b" "))
    return lines


COUNT_KEYS = ("trades", "deltas", "snapshots", "ignored", "other_symbol", "malformed")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_recording_reader_counts_every_bad_line_and_never_stops(messages, data):
    lines = data.draw(recording_lines(messages))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "damaged.gz"
        path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
        reader = read_recording([path], "ETHUSDT")
        items = list(reader)

    for ts_init, event in items:
        assert isinstance(ts_init, int)
        assert event.symbol == "ETHUSDT"
        assert_valid_event(event)
    blank = sum(1 for line in lines if not line.strip())
    assert reader.counts["lines"] == len(lines)
    assert sum(reader.counts[k] for k in COUNT_KEYS) + blank == len(lines)
    assert len(items) == reader.counts["trades"] + reader.counts["deltas"] + reader.counts["snapshots"]
