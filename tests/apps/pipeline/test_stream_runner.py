"""The stream session runner in this process (as the embedded default runs it): it takes the
leases, runs the engine on the live venue (the replay venue on loopback), writes each stream's
status and counters, follows what the user wants, and lets go when nobody wants the streams."""
from __future__ import annotations

import threading
import time

import pytest

from apps.market.models import CobFrame, Instrument, MarketStream
from apps.market.streams import StreamLease
from apps.pipeline import stream_runner
from tests.apps.market.venues.threaded import ThreadedReplay

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def replay(settings):
    venue = ThreadedReplay(speed=10)
    settings.GOGO_BINANCE_REST_URL, settings.GOGO_BINANCE_WS_URL = venue.server.url, venue.server.ws_url
    try:
        yield venue
    finally:
        venue.stop()


@pytest.fixture
def binance(pipeline_ready):
    rows = {i.symbol: i for i in Instrument.objects.filter(venue="binance", symbol__in=["ETHUSDT", "BTCUSDT"])}
    MarketStream.objects.filter(instrument__in=rows.values()).update(desired="running", status="idle")
    return rows


def _wait(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_session_runs_the_wanted_streams_and_ends_when_nobody_wants_them(replay, binance):
    published: list[dict] = []
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(stream_runner.stream_session_run(
        venue="binance", publish=published.append)), daemon=True)
    thread.start()
    eth = binance["ETHUSDT"]
    try:
        _wait(lambda: MarketStream.objects.get(instrument=eth).status == "live"
              and CobFrame.objects.filter(instrument=eth).count() >= 5, 60, "the stream to go live and store frames")
        assert StreamLease(eth).held_elsewhere() and StreamLease(binance["BTCUSDT"]).held_elsewhere()
        # A second session for the same venue finds the leases taken and leaves at once.
        assert stream_runner.stream_session_run(venue="binance")["status"] == "busy"
        stream = MarketStream.objects.get(instrument=eth)
        assert stream.messages > 0 and stream.worker and stream.last_message_at is not None
        assert any(u.get("type") == "tick" for u in published)
        assert any(u.get("type") == "streams" for u in published)
    finally:
        MarketStream.objects.filter(instrument__in=binance.values()).update(desired="stopped")
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert result["status"] == "stopped" and result["sessions"] == 1
    assert set(MarketStream.objects.filter(instrument__in=binance.values()).values_list("status", flat=True)) == {"stopped"}
    assert not StreamLease(eth).held_elsewhere()


def test_stopping_the_reference_restarts_the_session_with_the_traded_instrument_alone(replay, binance):
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(stream_runner.stream_session_run(venue="binance")), daemon=True)
    thread.start()
    eth, btc = binance["ETHUSDT"], binance["BTCUSDT"]
    try:
        _wait(lambda: MarketStream.objects.get(instrument=eth).status == "live", 60, "the stream to go live")
        MarketStream.objects.filter(instrument=btc).update(desired="stopped")
        _wait(lambda: MarketStream.objects.get(instrument=btc).status == "stopped"
              and not StreamLease(btc).held_elsewhere(), 30, "the reference stream to stop and release its lease")
        frames = CobFrame.objects.filter(instrument=eth).count()
        _wait(lambda: CobFrame.objects.filter(instrument=eth).count() > frames + 3, 60, "ETH frames to keep coming")
        assert StreamLease(eth).held_elsewhere()
    finally:
        MarketStream.objects.filter(instrument__in=binance.values()).update(desired="stopped")
        thread.join(timeout=30)
    assert result["status"] == "stopped" and result["sessions"] == 2


def test_a_reference_stream_alone_fails_with_a_clear_reason(binance):
    MarketStream.objects.filter(instrument=binance["ETHUSDT"]).update(desired="stopped")
    result = stream_runner.stream_session_run(venue="binance")
    assert result["status"] == "failed"
    stream = MarketStream.objects.get(instrument=binance["BTCUSDT"])
    assert stream.status == "failed" and "traded instrument" in stream.error
