"""Importing Binance dump files into stored candles (apps.market.archive and the command).

The dump files are written into tmp_path from the real recorded data by the writers of
tests/ml/data/test_binance_archive.py (there are no data.binance.vision dumps in the data dir).
"""
from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.market.archive import archive_import
from apps.market.convert import ms_to_datetime, to_decimal
from apps.market.models import Candle, Instrument
from ml.data.binance_archive import AGG_TRADE_COLUMNS, KLINE_COLUMNS
from tests.ml.data.test_binance_archive import (
    AUG_09,
    JAN_15,
    agg_trade_rows,
    builder_candles,
    kline_rows,
    recorded_trades,
    source_frame,
    write_dump,
)

pytestmark = pytest.mark.django_db

DAY = 86_400_000
JAN_1, FEB_1 = 1704067200000, 1706745600000


@pytest.fixture
def dumps(tmp_path: Path) -> Path:
    """A directory like a data.binance.vision download, with a few things that must be skipped."""
    jan15 = source_frame("binance_spot_ETHUSDT_1m_2024-01.csv.gz", JAN_15, JAN_15 + DAY)
    write_dump(tmp_path, "ETHUSDT-1m-2024-01-15.zip", kline_rows(jan15, "1m", micro=True), header=KLINE_COLUMNS)
    january = source_frame("binance_spot_ETHUSDT_1d_2024.csv", JAN_1, FEB_1)
    write_dump(tmp_path, "ETHUSDT-1d-2024-01.csv", kline_rows(january, "1d"))
    btc_1s = source_frame("derived/binance_spot_BTCUSDT_1s_20240808T2354-20240809T0005.csv", end_ms=AUG_09)
    write_dump(tmp_path, "BTCUSDT-1s-2024-08-08.csv", kline_rows(btc_1s, "1s"))
    write_dump(tmp_path, "ETHUSDT-aggTrades-2024-08-08.zip", agg_trade_rows(recorded_trades(), micro=True),
               header=AGG_TRADE_COLUMNS)
    hours = kline_rows(source_frame("binance_spot_ETHUSDT_1h_20240101-20240906.csv.gz", JAN_15, JAN_15 + DAY), "1h")
    hours[6] = "not,a,row"  # line 7
    hours[17] = hours[17].replace(hours[17].split(",")[5], "-1", 1)  # line 18: negative volume
    write_dump(tmp_path, "ETHUSDT-1h-2024-01-15.csv", hours)
    write_dump(tmp_path, "SOLUSDT-1m-2024-01-15.csv", kline_rows(jan15, "1m"))  # no SOLUSDT instrument
    write_dump(tmp_path, "ETHUSDT-5m-2024-01-15.csv", [])  # 5m candles are not stored
    (tmp_path / "ETHUSDT-1m-2024-01-15.zip.CHECKSUM").write_text("not a dump")
    return tmp_path


def _eth() -> Instrument:
    return Instrument.objects.get(venue="binance", symbol="ETHUSDT")


def _stored(instrument: Instrument, timeframe: str, start_ms: int, end_ms: int) -> list[Candle]:
    return list(Candle.objects.filter(instrument=instrument, timeframe=timeframe, open_time__gte=ms_to_datetime(start_ms),
                                      open_time__lt=ms_to_datetime(end_ms)).order_by("open_time"))


def _clear(instrument: Instrument, timeframe: str, start_ms: int, end_ms: int) -> None:
    """Bootstrap loaded some of these ranges from the history files: start from none."""
    Candle.objects.filter(instrument=instrument, timeframe=timeframe, open_time__gte=ms_to_datetime(start_ms),
                          open_time__lt=ms_to_datetime(end_ms)).delete()


def test_it_stores_the_kline_files_with_the_source_values(dumps):
    eth = _eth()
    _clear(eth, "1d", JAN_1, FEB_1)

    report = archive_import(directory=dumps)

    by_name = {f.name: f for f in report.files}
    assert by_name["ETHUSDT-1m-2024-01-15.zip"].candles == 1440
    source = source_frame("binance_spot_ETHUSDT_1m_2024-01.csv.gz", JAN_15, JAN_15 + DAY)
    rows = _stored(eth, "1m", JAN_15, JAN_15 + DAY)
    assert [r.open_time for r in rows] == [ms_to_datetime(int(t)) for t in source["open_time"]]
    for col in ("open", "high", "low", "close", "volume"):
        assert [getattr(r, col) for r in rows] == [to_decimal(v) for v in source[col]], col
    days = _stored(eth, "1d", JAN_1, FEB_1)
    assert len(days) == 31
    assert days[0].open_time == datetime(2024, 1, 1, tzinfo=UTC)
    assert (days[0].open, days[0].close) == (to_decimal(2281.87), to_decimal(2352.04))
    btc = Instrument.objects.get(venue="binance", symbol="BTCUSDT")
    seconds = _stored(btc, "1s", 0, AUG_09)
    btc_source = source_frame("derived/binance_spot_BTCUSDT_1s_20240808T2354-20240809T0005.csv", end_ms=AUG_09)
    assert [(r.close, r.quote_volume, r.trade_count) for r in seconds] == [
        (to_decimal(c), to_decimal(q), n) for c, q, n in btc_source[["close", "quote_volume", "trade_count"]].itertuples(
            index=False)]


def test_agg_trades_become_the_1s_candles_of_the_live_candle_builder(dumps):
    eth = _eth()
    trades = recorded_trades()
    expected = builder_candles(trades, "ETHUSDT")
    _clear(eth, "1s", expected[0].open_time, expected[-1].open_time + 1000)

    report = archive_import(directory=dumps, instrument=eth)

    assert {f.name: f.candles for f in report.files}["ETHUSDT-aggTrades-2024-08-08.zip"] == len(expected)
    rows = _stored(eth, "1s", expected[0].open_time, expected[-1].open_time + 1000)
    assert len(rows) == len(expected) > 300
    for row, e in zip(rows, expected, strict=True):
        assert row.open_time == ms_to_datetime(e.open_time)
        assert (row.open, row.high, row.low, row.close, row.trade_count) == (
            to_decimal(e.open), to_decimal(e.high), to_decimal(e.low), to_decimal(e.close), e.trade_count)
        assert abs(row.volume - to_decimal(e.volume)) <= to_decimal(1e-8)  # summed in another order
        assert abs(row.quote_volume - to_decimal(e.quote_volume)) <= to_decimal(1e-6)


def test_unknown_symbols_unstored_timeframes_and_bad_rows_are_reported_not_raised(dumps):
    report = archive_import(directory=dumps)

    skipped = {f.name: f.skipped for f in report.skipped}
    assert skipped == {"SOLUSDT-1m-2024-01-15.csv": "unknown symbol SOLUSDT: no binance Instrument",
                       "ETHUSDT-5m-2024-01-15.csv": "timeframe 5m is not stored (only 1d, 1h, 1m, 1s)"}
    hours = next(f for f in report.files if f.name == "ETHUSDT-1h-2024-01-15.csv")
    assert (hours.rows, hours.malformed, hours.candles) == (24, 2, 22)
    assert [str(e) for e in hours.errors] == [
        "ETHUSDT-1h-2024-01-15.csv:7: expected 12 comma-separated fields",
        "ETHUSDT-1h-2024-01-15.csv:18: field 'volume' is negative",
    ]
    assert report.malformed == 2
    assert len(report.files) == 7  # the .CHECKSUM file is not a dump


def test_importing_twice_changes_nothing(dumps):
    eth = _eth()
    first = archive_import(directory=dumps)
    stored = {r.pk: (r.open, r.close, r.volume, r.trade_count) for r in Candle.objects.filter(instrument=eth)}

    second = archive_import(directory=dumps)

    assert [f.candles for f in second.files] == [f.candles for f in first.files]
    after = {r.pk: (r.open, r.close, r.volume, r.trade_count) for r in Candle.objects.filter(instrument=eth)}
    assert after == stored


def test_the_command_prints_one_line_per_file_of_the_symbol(dumps):
    out = StringIO()

    call_command("import_archive", str(dumps), "--symbol", "ethusdt", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[1/5] ETHUSDT-aggTrades-2024-08-08.zip: ")
    assert "[2/5] ETHUSDT-1d-2024-01.csv: 31 rows, 31 1d candles, 0 malformed" in lines
    assert "[3/5] ETHUSDT-1h-2024-01-15.csv: 24 rows, 22 1h candles, 2 malformed" in lines
    assert "    ETHUSDT-1h-2024-01-15.csv:7: expected 12 comma-separated fields" in lines
    assert any(line.startswith("[5/5] ETHUSDT-5m-2024-01-15.csv: skipped (timeframe 5m") for line in lines)
    assert not any("SOLUSDT" in line or "BTCUSDT" in line for line in lines)
    assert lines[-1].endswith("2 malformed rows, 1 files skipped")


def test_the_command_rejects_an_unknown_symbol_and_a_missing_directory(dumps):
    with pytest.raises(CommandError, match="instrument SOLUSDT@binance is not configured"):
        call_command("import_archive", str(dumps), "--symbol", "SOLUSDT", stdout=StringIO())
    with pytest.raises(CommandError, match="not a directory"):
        call_command("import_archive", str(dumps / "missing"), stdout=StringIO())
