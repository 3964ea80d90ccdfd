"""Reads for market data."""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from django.db import connection
from django.db.models import BigIntegerField, FloatField
from django.db.models.functions import Cast, Extract

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
    rows = _event_rows(Candle.objects.filter(instrument=instrument, timeframe=timeframe, open_time__lt=end)
                       .order_by("-open_time"), limit)
    symbol = instrument.symbol
    return [CandleEvent(symbol, *r) for r in reversed(rows)]


def candle_get(*, instrument: Instrument, timeframe: str, open_time: datetime) -> CandleEvent | None:
    """One stored candle or None."""
    rows = _event_rows(Candle.objects.filter(instrument=instrument, timeframe=timeframe, open_time=open_time), 1)
    return CandleEvent(instrument.symbol, *rows[0]) if rows else None


_PRICES = ("open", "high", "low", "close", "volume", "quote_volume")


def _event_rows(candles, limit: int | None = None) -> list[tuple]:
    """The first ``limit`` (default all) of ``candles`` as rows of the ml Candle event's fields after
    the symbol (timeframe, open time in epoch ms, six floats, trade count). On Postgres the database
    converts open_time to epoch ms and the numeric columns to float8 (correctly rounded, as
    ``float(Decimal)`` is), so no datetime or Decimal is built: reading the engine's 3,600 history
    candles as models took ~4x as long. Elsewhere (SQLite: no epoch extract) the stored values are
    converted here."""
    if connection.vendor == "postgresql":
        ms = Cast(Extract("open_time", "epoch") * 1000, BigIntegerField())
        floats = {f"{name}_f": Cast(name, FloatField()) for name in _PRICES}
        return list(candles.annotate(open_ms=ms, **floats).values_list(
            "timeframe", "open_ms", *(f"{name}_f" for name in _PRICES), "trade_count")[:limit])
    rows = candles.values_list("timeframe", "open_time", *_PRICES, "trade_count")[:limit]
    return [(tf, datetime_to_ms(t), float(o), float(h), float(low), float(c), float(v), float(qv), n)
            for tf, t, o, h, low, c, v, qv, n in rows]


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

    rows = _event_rows(Candle.objects.filter(instrument=instrument, timeframe=timeframe,
                                             open_time__gte=ms_to_datetime(start_ms),
                                             open_time__lt=ms_to_datetime(end_ms)).order_by("open_time"))
    symbol = instrument.symbol
    return [CandleEvent(symbol, *r) for r in rows]


def candle_open_times(*, instrument: Instrument, timeframe: str, start_ms: int, end_ms: int) -> set[int]:
    """Open times (ms) of the stored candles in ``[start_ms, end_ms)``."""
    from apps.market.convert import ms_to_datetime

    times = Candle.objects.filter(instrument=instrument, timeframe=timeframe, open_time__gte=ms_to_datetime(start_ms),
                                  open_time__lt=ms_to_datetime(end_ms)).values_list("open_time", flat=True)
    return {datetime_to_ms(t) for t in times}
