"""Writes for market data: instruments, candles, COB frames, data gaps, history loading."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

from apps.market.convert import ms_to_datetime, to_decimal
from apps.market.models import Candle, CobFrame, DataGap, Instrument
from ml.market.events import Candle as CandleEvent
from ml.market.events import CobFrame as CobFrameEvent

logger = logging.getLogger(__name__)

DEFAULT_INSTRUMENTS = (
    # symbol, base, quote, bucket width (USD), traded
    ("ETHUSDT", "ETH", "USDT", Decimal("1"), True),
    ("BTCUSDT", "BTC", "USDT", Decimal("10"), False),
)
BATCH_SIZE = 2000


def instrument_ensure_defaults() -> list[Instrument]:
    """Create ETHUSDT (traded) and BTCUSDT (reference) on Binance spot and USD-M if missing.

    Existing rows are left as the admin edited them."""
    instruments = []
    for venue in (Instrument.Venue.BINANCE, Instrument.Venue.BINANCE_USDM):
        for symbol, base, quote, width, traded in DEFAULT_INSTRUMENTS:
            instrument, _ = Instrument.objects.get_or_create(
                venue=venue,
                symbol=symbol,
                defaults={"base": base, "quote": quote, "bucket_width": width, "is_traded": traded},
            )
            instruments.append(instrument)
    return instruments


def candle_upsert_many(*, instrument: Instrument, candles: Iterable[CandleEvent]) -> int:
    """Insert or update candles on (instrument, timeframe, open_time); returns rows written.

    Idempotent: re-running with the same candles changes nothing; within one call the last candle
    for a key wins. The same service serves history files, live rollups and (later) REST backfill.
    """
    latest = {(c.timeframe, c.open_time): c for c in candles}
    rows = [
        Candle(
            instrument=instrument,
            timeframe=c.timeframe,
            open_time=ms_to_datetime(c.open_time),
            open=to_decimal(c.open),
            high=to_decimal(c.high),
            low=to_decimal(c.low),
            close=to_decimal(c.close),
            volume=to_decimal(c.volume),
            quote_volume=to_decimal(c.quote_volume),
            trade_count=c.trade_count,
        )
        for c in latest.values()
    ]
    for start in range(0, len(rows), BATCH_SIZE):
        Candle.objects.bulk_create(
            rows[start : start + BATCH_SIZE],
            update_conflicts=True,
            unique_fields=["instrument", "timeframe", "open_time"],
            update_fields=["open", "high", "low", "close", "volume", "quote_volume", "trade_count"],
        )
    return len(rows)


def cob_frame_upsert_many(*, instrument: Instrument, frames: Sequence[CobFrameEvent]) -> int:
    """Insert or update COB frames on (instrument, ts); returns rows written."""
    rows = [_cob_row(instrument, f) for f in {f.ts: f for f in frames}.values()]
    CobFrame.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["instrument", "ts"],
        update_fields=[
            "mid", "best_bid", "best_ask", "bucket_width", "first_bucket_price", "bid_usd", "ask_usd",
            "imbalance", "imbalance_5", "ma_1s", "ma_5s", "ma_15s", "ma_60s",
        ],
    )
    return len(rows)


def _cob_row(instrument: Instrument, f: CobFrameEvent) -> CobFrame:
    return CobFrame(
        instrument=instrument,
        ts=ms_to_datetime(f.ts),
        mid=to_decimal(f.mid),
        best_bid=to_decimal(f.best_bid),
        best_ask=to_decimal(f.best_ask),
        bucket_width=to_decimal(f.bucket_width),
        first_bucket_price=to_decimal(f.first_bucket_price),
        bid_usd=[round(float(v), 6) for v in f.bid_usd],
        ask_usd=[round(float(v), 6) for v in f.ask_usd],
        imbalance=[round(float(v), 9) for v in f.imbalance],
        imbalance_5=float(f.imbalance_5),
        ma_1s=float(f.imbalance_ma.get("1s", 0.0)),
        ma_5s=float(f.imbalance_ma.get("5s", 0.0)),
        ma_15s=float(f.imbalance_ma.get("15s", 0.0)),
        ma_60s=float(f.imbalance_ma.get("60s", 0.0)),
    )


def data_gap_record(*, instrument: Instrument, cause: str, ts_event_ms: int, detail: str = "") -> DataGap:
    """Store one data gap (idempotent on instrument, cause and time)."""
    gap, _ = DataGap.objects.get_or_create(
        instrument=instrument, cause=cause, ts_event=ms_to_datetime(ts_event_ms), defaults={"detail": detail[:255]}
    )
    return gap


def history_load(*, instrument: Instrument, data_dir: Path) -> dict[str, int]:
    """Load the recorded 1m/1h/1d candle files of an instrument through ``candle_upsert_many``.

    Returns rows per timeframe. Raises FileNotFoundError naming the missing file.
    """
    from ml.data.history import history_files, load_ohlcv_csv

    counts: dict[str, int] = {}
    for timeframe, path in history_files(Path(data_dir), instrument.symbol).items():
        if not path.exists():
            raise FileNotFoundError(f"history file for {instrument.symbol} {timeframe} not found: {path}")
        frame = load_ohlcv_csv(path)
        existing = Candle.objects.filter(instrument=instrument, timeframe=timeframe).count()
        if existing >= len(frame):
            counts[timeframe] = 0
            continue
        candles = (
            CandleEvent(instrument.symbol, timeframe, int(r.open_time), r.open, r.high, r.low, r.close, r.volume)
            for r in frame.itertuples(index=False)
        )
        counts[timeframe] = candle_upsert_many(instrument=instrument, candles=candles)
        logger.info("loaded %d %s candles for %s from %s", counts[timeframe], timeframe, instrument, path.name)
    return counts
