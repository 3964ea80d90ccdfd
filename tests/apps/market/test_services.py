from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from apps.market.models import Candle, Instrument
from apps.market.services import candle_upsert_many
from ml.market.events import Candle as CandleEvent

pytestmark = pytest.mark.django_db


def test_candle_upsert_is_idempotent_on_the_natural_key():
    eth = Instrument.objects.get(venue="binance", symbol="ETHUSDT")
    t = 1723161256000
    first = CandleEvent("ETHUSDT", "1s", t, 2682.91, 2682.91, 2682.81, 2682.81, 0.3261, 874.89559, 12)
    candle_upsert_many(instrument=eth, candles=[first])
    corrected = CandleEvent("ETHUSDT", "1s", t, 2682.91, 2682.95, 2682.81, 2682.9, 0.5, 1341.0, 13)
    candle_upsert_many(instrument=eth, candles=[corrected, corrected])
    row = Candle.objects.get(instrument=eth, timeframe="1s", open_time=datetime.fromtimestamp(t / 1000, UTC))
    assert (row.high, row.close, row.volume, row.trade_count) == (D("2682.95"), D("2682.9"), D("0.5"), 13)


def test_the_recorded_history_covers_the_300_candles_before_the_session():
    """bootstrap() loaded the 1m/1h/1d files; the session starts 2024-08-08 23:54:15 UTC."""
    start = datetime(2024, 8, 8, 23, 54, tzinfo=UTC)
    for symbol in ("ETHUSDT", "BTCUSDT"):
        instrument = Instrument.objects.get(venue="binance", symbol=symbol)
        for timeframe in ("1m", "1h", "1d"):
            before = Candle.objects.filter(instrument=instrument, timeframe=timeframe, open_time__lt=start).count()
            assert before >= 300, (symbol, timeframe, before)
    eth = Instrument.objects.get(venue="binance", symbol="ETHUSDT")
    c = Candle.objects.get(instrument=eth, timeframe="1m", open_time=datetime(2024, 8, 8, 23, 59, tzinfo=UTC))
    assert c.close == D("2682.50")  # the data README's cross-check with the recorded trades


def test_candle_reads_give_the_stored_values_as_python_would_convert_them():
    """candle_list / candle_range / candle_get convert in the database on Postgres (epoch ms,
    float8): the events equal float(Decimal) and the open time in ms of every stored 1m candle."""
    from apps.market.convert import datetime_to_ms
    from apps.market.selectors import candle_get, candle_list, candle_range

    eth = Instrument.objects.get(venue="binance", symbol="ETHUSDT")
    odd = CandleEvent("ETHUSDT", "1m", 1723161300000, 2682.91, 2683.123456789, 0.00000001, 99999.99999999,
                      1e-8, 123456789.12345678, 7)
    candle_upsert_many(instrument=eth, candles=[odd])
    stored = Candle.objects.filter(instrument=eth, timeframe="1m").order_by("open_time")
    expected = [CandleEvent("ETHUSDT", "1m", datetime_to_ms(c.open_time), float(c.open), float(c.high), float(c.low),
                            float(c.close), float(c.volume), float(c.quote_volume), c.trade_count) for c in stored]
    assert len(expected) >= 300 and odd.open_time in {e.open_time for e in expected}
    end = datetime(2030, 1, 1, tzinfo=UTC)
    assert candle_list(instrument=eth, timeframe="1m", end=end, limit=len(expected)) == expected
    assert candle_list(instrument=eth, timeframe="1m", end=end, limit=5) == expected[-5:]
    assert candle_range(instrument=eth, timeframe="1m", start_ms=0, end_ms=2**45) == expected
    one = stored.get(open_time=datetime.fromtimestamp(odd.open_time / 1000, UTC))
    assert candle_get(instrument=eth, timeframe="1m", open_time=one.open_time) == expected[list(stored).index(one)]
