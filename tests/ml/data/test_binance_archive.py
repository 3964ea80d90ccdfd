"""ml.data.binance_archive on dump files written here from the real recorded data.

There are no data.binance.vision dumps in the data directory, so the tests write files in the
dump format (CSV and zip; ms and, as spot dumps since 2025, µs times; with and without header)
from the recorded candles (shared data README section 3) and trades (section 1).
"""
from __future__ import annotations

import math
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.data.binance_archive import (
    AGG_TRADE_COLUMNS,
    KLINE_COLUMNS,
    candles_from_klines,
    find_archives,
    parse_archive_name,
    read_archive,
    second_candles_from_agg_trades,
    trades_from_agg_trades,
)
from ml.data.history import load_ohlcv_csv
from ml.market.candles import TIMEFRAME_MS, SecondCandleBuilder
from ml.market.events import Candle, Trade
from ml.market.recording import default_data_dir, read_recording

DATA_DIR = default_data_dir()
OHLCV = DATA_DIR / "ohlcv"
ETH_TRADES_0808 = DATA_DIR / "orderbook" / "binance_spot" / "ethusdt_20240808.gz"
JAN_15 = 1705276800000  # 2024-01-15 00:00 UTC, ms
AUG_09 = 1723161600000  # 2024-08-09 00:00 UTC


# ---- writers of dump-format files (also used by tests/apps/market/test_archive.py) ----

def source_frame(name: str, start_ms: int | None = None, end_ms: int | None = None) -> pd.DataFrame:
    """Rows ``[start_ms, end_ms)`` of a recorded candle file, with every column it has."""
    path = OHLCV / name
    frame = pd.read_csv(path)
    if "open_time" not in frame:  # date / datetime files: the same rows, sorted, as load_ohlcv_csv reads them
        frame.insert(0, "open_time", load_ohlcv_csv(path)["open_time"])
    keep = pd.Series(True, index=frame.index)
    if start_ms is not None:
        keep &= frame["open_time"] >= start_ms
    if end_ms is not None:
        keep &= frame["open_time"] < end_ms
    return frame[keep].reset_index(drop=True)


def kline_rows(frame: pd.DataFrame, timeframe: str, *, micro: bool = False) -> list[str]:
    """Dump rows of a candle frame; columns the source lacks (quote volume, count, taker buy) are 0."""
    step, scale = TIMEFRAME_MS[timeframe], 1000 if micro else 1
    rows = []
    for r in frame.to_dict("records"):
        t = int(r["open_time"])
        fields = [t * scale, r["open"], r["high"], r["low"], r["close"], r["volume"], (t + step) * scale - 1,
                  r.get("quote_volume", 0), int(r.get("trade_count", 0)), r.get("taker_buy_volume", 0),
                  r.get("taker_buy_quote_volume", 0), 0]
        rows.append(",".join(repr(v) if isinstance(v, float) else str(v) for v in fields))
    return rows


def recorded_trades(path: Path = ETH_TRADES_0808, symbol: str = "ETHUSDT") -> list[Trade]:
    return [e for _, e in read_recording([path], symbol) if isinstance(e, Trade)]


def agg_trade_rows(trades: list[Trade], *, micro: bool = False) -> list[str]:
    """aggTrades rows from raw trades: consecutive trades with the same time, price and side are one
    aggregate (Binance aggregates the fills of one taker order at one price), ids from the trades."""
    groups: list[list[Trade]] = []
    for t in trades:
        last = groups[-1][-1] if groups else None
        if last and (last.ts_event, last.price, last.is_buyer_maker) == (t.ts_event, t.price, t.is_buyer_maker):
            groups[-1].append(t)
        else:
            groups.append([t])
    scale = 1000 if micro else 1
    return [f"{i},{g[0].price!r},{sum(t.size for t in g)!r},{g[0].trade_id},{g[-1].trade_id},"
            f"{g[0].ts_event * scale},{str(g[0].is_buyer_maker).lower()},true" for i, g in enumerate(groups, 1_000_000)]


def write_dump(directory: Path, name: str, rows: Iterable[str], *, header: tuple[str, ...] | None = None) -> Path:
    """Write a dump: ``name`` ending in .csv as plain text, in .zip as a zip holding ``<stem>.csv``."""
    lines = ([",".join(header)] if header else []) + list(rows)
    text = "\n".join(lines) + "\n"
    path = directory / name
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(path.with_suffix(".csv").name, text)
    else:
        path.write_text(text)
    return path


def builder_candles(trades: list[Trade], symbol: str) -> list[Candle]:
    """What the live pipeline's SecondCandleBuilder gives for these trades, every second closed."""
    builder = SecondCandleBuilder(symbol)
    for t in trades:
        builder.on_trade(t)
    first, last = trades[0].ts_event // 1000 * 1000, trades[-1].ts_event // 1000 * 1000
    return [c for s in range(first, last + 1000, 1000) if (c := builder.close(s)) is not None]


# ---- tests ----

def test_the_file_name_gives_symbol_kind_timeframe_and_period():
    daily = parse_archive_name("/x/ETHUSDT-1m-2024-08-08.zip")
    monthly = parse_archive_name("ETHUSDT-1d-2024-01.csv")
    agg = parse_archive_name("ETHUSDT-aggTrades-2024-08-08.zip")

    assert (daily.symbol, daily.kind, daily.timeframe, daily.period) == ("ETHUSDT", "klines", "1m", "2024-08-08")
    assert (monthly.timeframe, monthly.period) == ("1d", "2024-01")
    assert (agg.kind, agg.timeframe) == ("aggTrades", None)
    assert parse_archive_name("ETHUSDT-1m-2024-08-08.zip.CHECKSUM") is None
    assert parse_archive_name("notes.txt") is None


def test_it_reads_1s_klines_with_every_column_exactly(tmp_path):
    source = source_frame("derived/binance_spot_ETHUSDT_1s_20240808T2354-20240809T0005.csv", end_ms=AUG_09)
    path = write_dump(tmp_path, "ETHUSDT-1s-2024-08-08.csv", kline_rows(source, "1s"))

    read = read_archive(path)
    candles = candles_from_klines(read)

    assert (read.rows, read.malformed) == (len(source), 0) and len(source) == 344  # 23:54:16 .. 23:59:59
    first = source.iloc[0]
    assert candles[0] == Candle("ETHUSDT", "1s", 1723161256000, 2682.91, 2682.91, 2682.81, 2682.81, 0.3261,
                                874.89559, 12)
    assert (first["open"], first["quote_volume"], first["trade_count"]) == (2682.91, 874.89559, 12)
    assert [c.close for c in candles] == source["close"].tolist()
    assert [c.trade_count for c in candles] == source["trade_count"].tolist()
    assert [c.quote_volume for c in candles] == source["quote_volume"].tolist()


def test_microsecond_zip_with_header_reads_like_the_millisecond_csv(tmp_path):
    day = source_frame("binance_spot_ETHUSDT_1m_2024-01.csv.gz", JAN_15, JAN_15 + 86_400_000)
    ms_csv = write_dump(tmp_path, "ETHUSDT-1m-2024-01-15.csv", kline_rows(day, "1m"))
    (tmp_path / "us").mkdir()
    us_zip = write_dump(tmp_path / "us", "ETHUSDT-1m-2024-01-15.zip", kline_rows(day, "1m", micro=True),
                        header=KLINE_COLUMNS)

    from_ms, from_us = candles_from_klines(read_archive(ms_csv)), candles_from_klines(read_archive(us_zip))

    assert len(from_ms) == 1440
    assert from_us == from_ms
    assert from_us[0].open_time == JAN_15
    assert [c.close for c in from_us] == day["close"].tolist()
    assert [c.volume for c in from_us] == day["volume"].tolist()


def test_malformed_rows_are_reported_with_file_and_line_and_the_rest_is_kept(tmp_path):
    month = source_frame("binance_spot_ETHUSDT_1d_2024.csv", 1704067200000, 1706745600000)
    rows = kline_rows(month, "1d")
    rows[2] = rows[2].replace(",", ";", 1)  # line 3: one field short
    fields = rows[4].split(",")
    fields[2], fields[3] = fields[3], fields[2]  # line 5: high below low
    rows[4] = ",".join(fields)
    rows[9] = rows[9].replace(rows[9].split(",")[1], "NaN", 1)  # line 10
    rows[20] = str(int(rows[20].split(",")[0]) + 60_000) + rows[20][13:]  # line 21: not at 00:00
    path = write_dump(tmp_path, "ETHUSDT-1d-2024-01.csv", rows)

    read = read_archive(path)

    assert (read.rows, read.malformed, len(read.frame)) == (31, 4, 27)
    assert [str(e) for e in read.errors] == [
        "ETHUSDT-1d-2024-01.csv:3: expected 12 comma-separated fields",
        "ETHUSDT-1d-2024-01.csv:5: field 'high' is below 'low'",
        "ETHUSDT-1d-2024-01.csv:10: field 'open' is not a finite number",
        "ETHUSDT-1d-2024-01.csv:21: field 'open_time' is not on a 1d boundary",
    ]
    assert candles_from_klines(read)[0].close == month["close"].iloc[0] == 2352.04


def test_agg_trades_read_back_as_the_recorded_trades(tmp_path):
    trades = recorded_trades()
    path = write_dump(tmp_path, "ETHUSDT-aggTrades-2024-08-08.zip", agg_trade_rows(trades, micro=True),
                      header=AGG_TRADE_COLUMNS)

    read = read_archive(path)
    aggregates = trades_from_agg_trades(read)

    assert read.malformed == 0
    assert len(trades) > len(aggregates) > 1000
    first = read.frame.iloc[0]
    group = [t for t in trades if first["first_trade_id"] <= t.trade_id <= first["last_trade_id"]]
    assert group[0] == trades[0] and group[0].trade_id == 1520538925 and len(group) > 1
    assert aggregates[0] == Trade("ETHUSDT", 1723161255611, 1_000_000, 2683.8, sum(t.size for t in group), True)
    assert sum(read.frame["last_trade_id"] - read.frame["first_trade_id"] + 1) == len(trades)
    assert sum(a.size for a in aggregates) == pytest.approx(sum(t.size for t in trades), rel=1e-12)


def test_1s_candles_from_agg_trades_equal_the_live_candle_builder_on_the_raw_trades(tmp_path):
    trades = recorded_trades()
    path = write_dump(tmp_path, "ETHUSDT-aggTrades-2024-08-08.csv", agg_trade_rows(trades))

    got = second_candles_from_agg_trades(read_archive(path))
    expected = builder_candles(trades, "ETHUSDT")

    assert len(got) == len(expected) == (expected[-1].open_time - expected[0].open_time) // 1000 + 1
    for g, e in zip(got, expected, strict=True):
        assert (g.open_time, g.open, g.high, g.low, g.close, g.trade_count) == (
            e.open_time, e.open, e.high, e.low, e.close, e.trade_count)
        assert g.volume == pytest.approx(e.volume, rel=1e-12, abs=1e-12)
        assert g.quote_volume == pytest.approx(e.quote_volume, rel=1e-12, abs=1e-9)
    derived = source_frame("derived/binance_spot_ETHUSDT_1s_20240808T2354-20240809T0005.csv", end_ms=AUG_09)
    by_time = {c.open_time: c for c in got}
    for row in derived.to_dict("records"):  # the data README's 1s candles, built from the same trades
        c = by_time[row["open_time"]]
        assert (c.open, c.high, c.low, c.close, c.trade_count) == (
            row["open"], row["high"], row["low"], row["close"], row["trade_count"])


def test_find_archives_lists_only_dumps(tmp_path):
    for name in ("ETHUSDT-aggTrades-2024-08-08.zip", "BTCUSDT-1m-2024-01-15.csv", "README.txt",
                 "ETHUSDT-1m-2024-01-15.zip.CHECKSUM"):
        (tmp_path / name).write_text("")

    assert [f.path.name for f in find_archives(tmp_path)] == ["BTCUSDT-1m-2024-01-15.csv",
                                                              "ETHUSDT-aggTrades-2024-08-08.zip"]


def test_a_zip_without_one_csv_is_a_value_error(tmp_path):
    path = tmp_path / "ETHUSDT-1m-2024-01-15.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "")
        archive.writestr("b.csv", "")

    with pytest.raises(ValueError, match="expected one CSV in the zip"):
        read_archive(path)


REAL_1D_ROWS = kline_rows(source_frame("binance_spot_ETHUSDT_1d_2024.csv", 1704067200000, 1704499200000), "1d")
ODD_FIELDS = st.sampled_from(["", " ", "nan", "inf", "-1", "0", "1e999", "true", "x", "١٢", "99999999999999999999",
                              "1704067200000", "1704067200000000", "2281.87"])


@st.composite
def damaged_kline_lines(draw) -> list[str]:
    """Real 1d rows, some with a field replaced, dropped or added, and random text lines."""
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["real", "field", "drop", "add", "text"]))
        fields = draw(st.sampled_from(REAL_1D_ROWS)).split(",")
        i = draw(st.integers(0, len(fields) - 1))
        if kind == "field":
            fields[i] = draw(ODD_FIELDS | st.text(alphabet=st.characters(exclude_characters="\n\r,"), max_size=8))
        elif kind == "drop":
            del fields[i]
        elif kind == "add":
            fields.insert(i, draw(ODD_FIELDS))
        line = ",".join(fields) if kind != "text" else draw(st.text(max_size=40))
        lines.append(line)
    return [" ".join(line.splitlines()) for line in lines]  # one line each


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # ~70 ms each (pandas)
@given(lines=damaged_kline_lines())
def test_damaged_kline_rows_are_counted_never_raised(lines):
    with tempfile.TemporaryDirectory() as tmp:
        read = read_archive(write_dump(Path(tmp), "ETHUSDT-1d-2024-01.csv", lines))

    assert read.rows == len(lines)
    assert read.malformed + len(read.frame) == read.rows
    assert len(read.errors) == read.malformed and all(1 <= e.line <= len(lines) for e in read.errors)
    for candle in candles_from_klines(read):
        assert all(math.isfinite(v) and v > 0 for v in (candle.open, candle.high, candle.low, candle.close))
        assert candle.high >= candle.low and candle.volume >= 0 and candle.open_time % 86_400_000 == 0
