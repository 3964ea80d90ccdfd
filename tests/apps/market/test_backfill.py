"""REST candle backfill against the replay venue: idempotent upserts and DataGap rows (real Postgres)."""
from __future__ import annotations

import pytest

from apps.market.backfill import candle_backfill, candle_backfill_on_start
from apps.market.models import Candle, DataGap, Instrument
from apps.market.selectors import candle_range
from apps.market.venues.ccxt_rest import BinanceRest, VenuePermanentError
from apps.market.venues.replay_data import load_history
from ml.market.candles import rollup, second_candles
from ml.market.recording import default_data_dir
from tests.apps.market.venues.threaded import ThreadedReplay

pytestmark = pytest.mark.django_db
MINUTE_2355 = 1723161300000  # 2024-08-08 23:55:00 UTC, inside the recorded session


@pytest.fixture(scope="module")
def replay():
    venue = ThreadedReplay(speed=1000)  # the whole session in under a second: every candle is closed
    try:
        venue.call(venue.server.finished.wait())
        yield venue
    finally:
        venue.stop()


@pytest.fixture
def rest(replay):
    return BinanceRest(rest_url=replay.server.url)


@pytest.fixture
def eth():
    return Instrument.objects.get(venue=Instrument.Venue.BINANCE, symbol="ETHUSDT")


def test_a_hole_of_1s_candles_is_fetched_stored_and_marked_backfilled(replay, rest, eth):
    end = MINUTE_2355 + 60_000
    written = candle_backfill(instrument=eth, timeframe="1s", start_ms=MINUTE_2355, end_ms=end, rest=rest,
                              cause=DataGap.Cause.DISCONNECT, detail="test")
    assert written == 60
    stored = candle_range(instrument=eth, timeframe="1s", start_ms=MINUTE_2355, end_ms=end)
    expected = second_candles(replay.server.recorded_trades("ETHUSDT"), "ETHUSDT")
    assert [c.open_time for c in stored] == list(range(MINUTE_2355, end, 1000))
    for candle in stored:
        want = expected[candle.open_time]
        assert (candle.open, candle.high, candle.low, candle.close, candle.trade_count) == \
            (want.open, want.high, want.low, want.close, want.trade_count)
        assert candle.volume == pytest.approx(want.volume, abs=1e-8)
    gap = DataGap.objects.get(instrument=eth, cause=DataGap.Cause.DISCONNECT)
    assert gap.backfilled and "60 of 60" in gap.detail
    # the minute rolled up from the backfilled seconds is Binance's own 1m candle (data README section 3)
    minute = rollup(stored, "1m")[0]
    history = load_history(default_data_dir(), "ETHUSDT", "1m")
    row = history.rows[history.open_times.index(MINUTE_2355)]
    assert (minute.open, minute.high, minute.low, minute.close) == row[:4]
    assert minute.volume == pytest.approx(row[4], rel=1e-9)


def test_running_a_backfill_twice_changes_nothing(rest, eth):
    kwargs = {"instrument": eth, "timeframe": "1s", "start_ms": MINUTE_2355, "end_ms": MINUTE_2355 + 30_000,
              "rest": rest}
    assert candle_backfill(**kwargs) == 30
    before = list(Candle.objects.filter(instrument=eth, timeframe="1s").values_list("open_time", "close", "volume"))
    assert candle_backfill(**kwargs) == 30
    after = list(Candle.objects.filter(instrument=eth, timeframe="1s").values_list("open_time", "close", "volume"))
    assert before == after and len(after) == 30
    assert DataGap.objects.filter(instrument=eth).count() == 1


def test_a_hole_the_venue_cannot_fill_stays_an_unfilled_gap_and_is_not_interpolated(rest, eth):
    start = 1723161000000  # 23:50: before the recording, and there are no 1 s history files
    assert candle_backfill(instrument=eth, timeframe="1s", start_ms=start, end_ms=start + 10_000, rest=rest) == 0
    gap = DataGap.objects.get(instrument=eth, cause=DataGap.Cause.MISSING_CANDLES, ts_end__isnull=False)
    assert not gap.backfilled and "0 of 10" in gap.detail
    assert not Candle.objects.filter(instrument=eth, timeframe="1s").exists()


def test_a_venue_error_leaves_the_gap_unfilled_and_is_raised(replay, rest, eth):
    replay.call(lambda: replay.server.http_error(400, path="/api/v3/klines"))
    with pytest.raises(VenuePermanentError):
        candle_backfill(instrument=eth, timeframe="1s", start_ms=MINUTE_2355, end_ms=MINUTE_2355 + 5_000, rest=rest)
    gap = DataGap.objects.get(instrument=eth)
    assert not gap.backfilled and "not backfilled" in gap.detail


def test_the_start_up_backfill_restores_missing_history_and_is_idempotent(rest, eth):
    now = MINUTE_2355
    cut = now - 100 * 60_000
    Candle.objects.filter(instrument=eth, timeframe="1m", open_time__gte=_dt(cut), open_time__lt=_dt(now)).delete()
    written = candle_backfill_on_start(instrument=eth, now_ms=now, count=600, rest=rest)
    assert written == {"1m": 100, "1h": 0, "1d": 0}  # 1h / 1d were complete (bootstrap history)
    history = load_history(default_data_dir(), "ETHUSDT", "1m")
    for candle in candle_range(instrument=eth, timeframe="1m", start_ms=cut, end_ms=now):
        row = history.rows[history.open_times.index(candle.open_time)]
        assert (candle.open, candle.high, candle.low, candle.close) == row[:4]
    assert candle_backfill_on_start(instrument=eth, now_ms=now, count=600, rest=rest) == {"1m": 0, "1h": 0, "1d": 0}
    assert not DataGap.objects.filter(instrument=eth).exists()


def _dt(ms: int):
    from apps.market.convert import ms_to_datetime

    return ms_to_datetime(ms)
