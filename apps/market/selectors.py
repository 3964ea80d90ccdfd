"""Reads for market data."""
from __future__ import annotations

from datetime import datetime

from apps.market.convert import datetime_to_ms
from apps.market.models import Candle, CobFrame, DataGap, Instrument, RetentionPolicy
from ml.market.events import Candle as CandleEvent


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
        .order_by("-open_time")[:limit]
    )
    return [_to_event(instrument.symbol, r) for r in reversed(list(rows))]


def candle_get(*, instrument: Instrument, timeframe: str, open_time: datetime) -> CandleEvent | None:
    """One stored candle or None."""
    row = Candle.objects.filter(instrument=instrument, timeframe=timeframe, open_time=open_time).first()
    return _to_event(instrument.symbol, row) if row else None


def _to_event(symbol: str, r: Candle) -> CandleEvent:
    return CandleEvent(
        symbol, r.timeframe, datetime_to_ms(r.open_time), float(r.open), float(r.high), float(r.low),
        float(r.close), float(r.volume), float(r.quote_volume), r.trade_count,
    )


def cob_frame_list(*, instrument: Instrument, start: datetime, end: datetime) -> list[CobFrame]:
    """Stored COB frames in [start, end), oldest first."""
    return list(CobFrame.objects.filter(instrument=instrument, ts__gte=start, ts__lt=end).order_by("ts"))


def data_gap_count(*, instrument: Instrument, cause: str | None = None) -> int:
    qs = DataGap.objects.filter(instrument=instrument)
    return qs.filter(cause=cause).count() if cause else qs.count()


def retention_policy_get() -> RetentionPolicy:
    """The retention settings (the one row, created with the defaults on first use)."""
    policy, _ = RetentionPolicy.objects.get_or_create(pk=1)
    return policy
