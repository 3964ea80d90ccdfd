"""Reads for market data."""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from apps.market.convert import datetime_to_ms
from apps.market.models import Candle, CobFrame, DataGap, Instrument, RetentionPolicy
from ml.market.events import Candle as CandleEvent
from ml.market.events import CobFrame as CobFrameEvent


def instrument_get(*, symbol: str, venue: str = Instrument.Venue.BINANCE) -> Instrument:
    """The instrument; raises Instrument.DoesNotExist with the symbol in the message."""
    try:
        return Instrument.objects.get(venue=venue, symbol=symbol)
    except Instrument.DoesNotExist as exc:
        raise Instrument.DoesNotExist(f"instrument {symbol}@{venue} is not configured") from exc


def candle_list(*, instrument: Instrument, timeframe: str, end: datetime, limit: int) -> list[CandleEvent]:
    """The last ``limit`` candles with open_time < ``end``, oldest first, as ml Candle events."""
    rows = (
        Candle.objects.filter(instrument=instrument, timeframe=timeframe, open_time__lt=end)
        .order_by("-open_time").values_list(*_EVENT_FIELDS)[:limit]
    )
    return [_row_to_event(instrument.symbol, r) for r in reversed(list(rows))]


def candle_get(*, instrument: Instrument, timeframe: str, open_time: datetime) -> CandleEvent | None:
    """One stored candle or None."""
    row = Candle.objects.filter(instrument=instrument, timeframe=timeframe, open_time=open_time) \
        .values_list(*_EVENT_FIELDS).first()
    return _row_to_event(instrument.symbol, row) if row else None


_EVENT_FIELDS = ("timeframe", "open_time", "open", "high", "low", "close", "volume", "quote_volume", "trade_count")


def _row_to_event(symbol: str, row: tuple) -> CandleEvent:
    """A ``values_list(*_EVENT_FIELDS)`` row as an ml Candle event: no model instance is built
    (reading the engine's 3,600 history candles as models took ~2x as long)."""
    tf, open_time, o, h, low, c, v, qv, n = row
    return CandleEvent(symbol, tf, datetime_to_ms(open_time), float(o), float(h), float(low), float(c), float(v),
                       float(qv), n)


def cob_frame_list(*, instrument: Instrument, start: datetime, end: datetime) -> list[CobFrame]:
    """Stored COB frames in [start, end), oldest first."""
    return list(CobFrame.objects.filter(instrument=instrument, ts__gte=start, ts__lt=end).order_by("ts"))


def cob_frame_event(symbol: str, row: CobFrame) -> CobFrameEvent:
    """A stored frame as the ml CobFrame (float32 bucket arrays), e.g. to rebuild rings or heatmaps."""
    return CobFrameEvent(
        symbol=symbol, ts=datetime_to_ms(row.ts), mid=float(row.mid), best_bid=float(row.best_bid),
        best_ask=float(row.best_ask), bucket_width=float(row.bucket_width), n_buckets=(len(row.bid_usd) - 1) // 2,
        first_bucket_price=float(row.first_bucket_price), bid_usd=np.asarray(row.bid_usd, dtype=np.float32),
        ask_usd=np.asarray(row.ask_usd, dtype=np.float32), imbalance=np.asarray(row.imbalance, dtype=np.float32),
        imbalance_5=row.imbalance_5,
        imbalance_ma={"1s": row.ma_1s, "5s": row.ma_5s, "15s": row.ma_15s, "60s": row.ma_60s},
    )


def cob_frame_latest_events(*, instrument: Instrument, seconds: int) -> list[CobFrameEvent]:
    """The newest stored frames covering the last ``seconds`` seconds of data, oldest first."""
    newest = CobFrame.objects.filter(instrument=instrument).order_by("-ts").values_list("ts", flat=True).first()
    if newest is None:
        return []
    rows = CobFrame.objects.filter(instrument=instrument, ts__gt=newest - timedelta(seconds=seconds)).order_by("ts")
    return [cob_frame_event(instrument.symbol, r) for r in rows]


def data_gap_count(*, instrument: Instrument, cause: str | None = None) -> int:
    qs = DataGap.objects.filter(instrument=instrument)
    return qs.filter(cause=cause).count() if cause else qs.count()


def retention_policy_get() -> RetentionPolicy:
    """The retention settings (the one row, created with the defaults on first use)."""
    policy, _ = RetentionPolicy.objects.get_or_create(pk=1)
    return policy


def candle_range(*, instrument: Instrument, timeframe: str, start_ms: int, end_ms: int) -> list[CandleEvent]:
    """Stored candles with open time in ``[start_ms, end_ms)`` (ms), oldest first, as ml Candle events."""
    from apps.market.convert import ms_to_datetime

    rows = Candle.objects.filter(instrument=instrument, timeframe=timeframe, open_time__gte=ms_to_datetime(start_ms),
                                 open_time__lt=ms_to_datetime(end_ms)).order_by("open_time").values_list(*_EVENT_FIELDS)
    return [_row_to_event(instrument.symbol, r) for r in rows]


def candle_open_times(*, instrument: Instrument, timeframe: str, start_ms: int, end_ms: int) -> set[int]:
    """Open times (ms) of the stored candles in ``[start_ms, end_ms)``."""
    from apps.market.convert import ms_to_datetime

    times = Candle.objects.filter(instrument=instrument, timeframe=timeframe, open_time__gte=ms_to_datetime(start_ms),
                                  open_time__lt=ms_to_datetime(end_ms)).values_list("open_time", flat=True)
    return {datetime_to_ms(t) for t in times}
