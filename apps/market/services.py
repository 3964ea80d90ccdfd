"""Writes for market data: instruments, candles, COB frames, data gaps, history loading."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson
from django.db import connection, transaction
from django.utils import timezone

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
    values = dict(zip(COB_COLUMNS[2:], _cob_row_values(f), strict=True))
    return CobFrame(instrument=instrument, ts=ms_to_datetime(f.ts), **values)


def _cob_row_values(f: CobFrameEvent) -> tuple:
    """Stored values of a frame, in ``COB_COLUMNS[2:]`` order (one rounding for every writer)."""
    ma = f.imbalance_ma
    return (
        to_decimal(f.mid), to_decimal(f.best_bid), to_decimal(f.best_ask), to_decimal(f.bucket_width),
        to_decimal(f.first_bucket_price),
        # numpy rounding (rint(x * 10^k) / 10^k): 20x faster than round() per value
        np.round(np.asarray(f.bid_usd, dtype=np.float64), 6).tolist(),
        np.round(np.asarray(f.ask_usd, dtype=np.float64), 6).tolist(),
        np.round(np.asarray(f.imbalance, dtype=np.float64), 9).tolist(),
        float(f.imbalance_5), float(ma.get("1s", 0.0)), float(ma.get("5s", 0.0)), float(ma.get("15s", 0.0)),
        float(ma.get("60s", 0.0)),
    )


COB_COLUMNS = ("instrument_id", "ts", "mid", "best_bid", "best_ask", "bucket_width", "first_bucket_price",
               "bid_usd", "ask_usd", "imbalance", "imbalance_5", "ma_1s", "ma_5s", "ma_15s", "ma_60s")


def cob_frame_copy_many(*, instrument: Instrument, frames: Sequence[CobFrameEvent]) -> int:
    """Bulk insert-or-update COB frames with Postgres ``COPY`` (psycopg 3 ``cursor.copy``).

    Rows go by COPY into a temporary staging table, then one ``INSERT ... SELECT ... ON CONFLICT
    (instrument_id, ts) DO UPDATE``, so the write is idempotent like :func:`cob_frame_upsert_many`
    and stores the same values (same rounding). On another database (the embedded SQLite) it
    falls back to :func:`cob_frame_upsert_many`. Within one call the last frame of a second wins.
    Returns rows written.
    """
    latest = list({f.ts: f for f in frames}.values())
    if not latest:
        return 0
    if connection.vendor != "postgresql":
        return cob_frame_upsert_many(instrument=instrument, frames=latest)
    table = CobFrame._meta.db_table
    cols = ", ".join(COB_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COB_COLUMNS[2:])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('pg_temp.cob_stage')")
        if cursor.fetchone()[0] is None:  # the column types of the real table, no constraints
            cursor.execute(f"CREATE TEMP TABLE cob_stage AS SELECT {cols} FROM {table} WITH NO DATA")
        with cursor.cursor.copy(f"COPY cob_stage ({cols}) FROM STDIN") as copy:
            for f in latest:
                copy.write_row(_cob_copy_row(instrument.pk, f))
        cursor.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM cob_stage "
                       f"ON CONFLICT (instrument_id, ts) DO UPDATE SET {updates}")
        cursor.execute("TRUNCATE cob_stage")
    return len(latest)


def _cob_copy_row(instrument_id: int, f: CobFrameEvent) -> tuple:
    row = _cob_row_values(f)
    return (instrument_id, ms_to_datetime(f.ts), *row[:5], orjson.dumps(row[5]).decode(),
            orjson.dumps(row[6]).decode(), orjson.dumps(row[7]).decode(), *row[8:])


def cob_frame_prune(*, now_ms: int | None = None) -> int:
    """Delete COB frames older than the retention policy's ``cob_frame_days`` (0: keep all).

    ``now_ms``: the reference time (ms since the epoch; default now). Returns rows deleted.
    """
    from apps.market.selectors import retention_policy_get

    days = retention_policy_get().cob_frame_days
    if not days:
        return 0
    now = ms_to_datetime(now_ms) if now_ms is not None else timezone.now()
    deleted, _ = CobFrame.objects.filter(ts__lt=now - timedelta(days=days)).delete()
    if deleted:
        logger.info("pruned %d COB frames older than %d days", deleted, days)
    return deleted


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


def data_gap_upsert(*, instrument: Instrument, cause: str, ts_event_ms: int, ts_end_ms: int | None = None,
                    detail: str = "", backfilled: bool = False) -> DataGap:
    """Store or update one data gap on (instrument, cause, ts_event): its end (ms, exclusive),
    detail and whether its candles were fetched again (idempotent)."""
    gap, _ = DataGap.objects.update_or_create(
        instrument=instrument, cause=cause, ts_event=ms_to_datetime(ts_event_ms),
        defaults={"ts_end": ms_to_datetime(ts_end_ms) if ts_end_ms is not None else None, "detail": detail[:255],
                  "backfilled": backfilled},
    )
    return gap
