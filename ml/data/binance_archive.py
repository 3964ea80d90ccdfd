"""Binance public data dumps (data.binance.vision): kline and aggTrades CSV files, plain or zipped.

File names give the symbol and the content (Binance's own layout, daily or monthly):

- ``ETHUSDT-1m-2024-08-08.zip`` / ``ETHUSDT-1m-2024-08.zip``: klines of one interval (``1s``,
  ``1m``, ``1h``, ``1d``, ...). Columns (no header in older files, a header row in some newer
  ones): open_time, open, high, low, close, volume, close_time, quote_volume, count,
  taker_buy_base_volume, taker_buy_quote_volume, ignore.
- ``ETHUSDT-aggTrades-2024-08-08.zip``: agg_trade_id, price, quantity, first_trade_id,
  last_trade_id, transact_time, is_buyer_maker, is_best_match.

A zip holds one CSV. Times are ms since the epoch, except spot files from 2025-01-01 on, which
use µs: each value is normalized by magnitude (>= 1e14 is µs, floored to ms). Source: the
binance-public-data repository README (github.com/binance/binance-public-data), "Klines" and
"AggTrades" sections and its note on the 2025 microsecond change.

:func:`read_archive` returns the canonical frame plus one :class:`RowError` (file, line, reason)
per malformed row; a bad row never stops the read. Pure pandas, no Django.
"""
from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ml.market.candles import TIMEFRAME_MS, SecondCandleBuilder
from ml.market.events import Candle, Trade

logger = logging.getLogger(__name__)

KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
                 "taker_buy_base_volume", "taker_buy_quote_volume", "ignore")
AGG_TRADE_COLUMNS = ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time",
                     "is_buyer_maker", "is_best_match")
AGG_TRADES = "aggTrades"
_NAME = re.compile(r"(?P<symbol>[A-Z0-9]+)-(?P<kind>aggTrades|\d+[smhdwM])-(?P<period>\d{4}-\d{2}(?:-\d{2})?)"
                   r"\.(?P<ext>csv|zip)")
_US_FROM = 10**14  # a time at or above this is in µs (ms reach 1e14 only in the year 5138)
_MAX_ERRORS = 50  # RowErrors kept per file (all are counted)


@dataclass(frozen=True)
class ArchiveFile:
    """What a dump's name says: ``kind`` is "klines" or "aggTrades"; ``timeframe`` for klines."""

    path: Path
    symbol: str
    kind: str
    timeframe: str | None
    period: str  # "2024-08-08" (daily) or "2024-08" (monthly)


@dataclass(frozen=True)
class RowError:
    """A malformed row: file name, 1-based line number in the CSV, reason."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class ArchiveRead:
    """One dump read: the valid rows in ``frame`` (canonical columns, file order) and the rest.

    Klines frame: open_time (int64 ms), open, high, low, close, volume, quote_volume (float64),
    count (int64). aggTrades frame: agg_trade_id, first_trade_id, last_trade_id,
    transact_time (int64 ms), price, quantity (float64), is_buyer_maker (bool).
    """

    file: ArchiveFile
    frame: pd.DataFrame
    rows: int  # data rows in the file (header excluded)
    malformed: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first _MAX_ERRORS


def parse_archive_name(path: str | Path) -> ArchiveFile | None:
    """The :class:`ArchiveFile` for a dump file name, or None if the name is not a dump's."""
    path = Path(path)
    match = _NAME.fullmatch(path.name)
    if match is None:
        return None
    kind = match["kind"]
    if kind == AGG_TRADES:
        return ArchiveFile(path, match["symbol"], AGG_TRADES, None, match["period"])
    return ArchiveFile(path, match["symbol"], "klines", kind, match["period"])


def read_archive(path: str | Path) -> ArchiveRead:
    """Read one kline or aggTrades dump (``.csv`` or ``.zip`` with one CSV).

    Raises:
        ValueError: the name is not a dump's, or a zip does not hold exactly one CSV.
        OSError / zipfile.BadZipFile: the file cannot be read.
    Malformed rows (wrong field count, non-numeric, non-finite, price <= 0, size < 0,
    high < low, an open time off its interval) are dropped and reported in ``errors``.
    """
    info = parse_archive_name(path)
    if info is None:
        raise ValueError(f"{path}: not a Binance dump name (SYMBOL-1m-YYYY-MM-DD.zip, SYMBOL-aggTrades-...)")
    lines = _read_lines(info.path)
    columns = AGG_TRADE_COLUMNS if info.kind == AGG_TRADES else KLINE_COLUMNS
    start = 1 if lines and lines[0].partition(",")[0].strip().lower() == columns[0] else 0  # a header row
    raw = _split(lines[start:], len(columns))
    line_no = np.arange(start + 1, len(lines) + 1)
    bad = pd.Series("", index=raw.index)
    bad[raw.isna().any(axis=1)] = f"expected {len(columns)} comma-separated fields"
    parse = _agg_trade_frame if info.kind == AGG_TRADES else _kline_frame
    frame = parse(raw, bad, info)
    read = ArchiveRead(info, frame[bad == ""].reset_index(drop=True), rows=len(raw))
    failed = np.flatnonzero((bad != "").to_numpy())
    read.malformed = len(failed)
    read.errors = [RowError(info.path.name, int(line_no[i]), bad.iloc[i]) for i in failed[:_MAX_ERRORS]]
    if read.malformed:
        logger.warning("%s: %d malformed rows skipped (first: %s)", info.path.name, read.malformed, read.errors[0])
    return read


def candles_from_klines(read: ArchiveRead) -> list[Candle]:
    """Candle events of a kline read (volume base units, quote_volume quote units)."""
    f, info = read.frame, read.file
    cols = [f[c].to_numpy() for c in ("open_time", "open", "high", "low", "close", "volume", "quote_volume", "count")]
    return [Candle(info.symbol, info.timeframe, int(t), float(o), float(h), float(lo), float(c), float(v),
                   float(qv), int(n)) for t, o, h, lo, c, v, qv, n in zip(*cols, strict=True)]


def trades_from_agg_trades(read: ArchiveRead) -> list[Trade]:
    """Trade events of an aggTrades read: one per aggregate trade, ``trade_id`` = agg_trade_id."""
    f, symbol = read.frame, read.file.symbol
    cols = [f[c].to_numpy() for c in ("transact_time", "agg_trade_id", "price", "quantity", "is_buyer_maker")]
    return [Trade(symbol, int(t), int(i), float(p), float(q), bool(m)) for t, i, p, q, m in zip(*cols, strict=True)]


def second_candles_from_agg_trades(read: ArchiveRead) -> list[Candle]:
    """1 s candles of an aggTrades read, built by :class:`ml.market.candles.SecondCandleBuilder`.

    Every second from the first trade's to the last trade's is closed (a second with no trade
    is flat at the previous close, zero volume). ``trade_count`` counts the underlying trades
    (``last_trade_id - first_trade_id + 1`` per aggregate), as Binance's kline ``count`` does.
    Trades must be in time order (a dump is, by agg_trade_id); a late one is counted by the
    builder and ignored.
    """
    trades = trades_from_agg_trades(read)
    if not trades:
        return []
    builder = SecondCandleBuilder(read.file.symbol)
    per_trade = (read.frame["last_trade_id"] - read.frame["first_trade_id"] + 1).to_numpy()
    counts: dict[int, int] = {}
    candles: list[Candle] = []

    def close_until(end: int) -> None:  # seconds are closed as the trades pass them, as live
        nonlocal next_second
        while next_second < end:
            candle = builder.close(next_second)
            if candle is not None:
                candles.append(replace(candle, trade_count=counts.pop(next_second, 0)))
            next_second += 1000

    next_second = last_second = trades[0].ts_event - trades[0].ts_event % 1000
    for trade, n in zip(trades, per_trade, strict=True):
        second = trade.ts_event - trade.ts_event % 1000
        close_until(second)
        builder.on_trade(trade)
        counts[second] = counts.get(second, 0) + int(n)
        last_second = max(last_second, second)
    close_until(last_second + 1000)
    if builder.late_trades:
        logger.warning("%s: %d aggregate trades out of time order ignored", read.file.path.name, builder.late_trades)
    return candles


def find_archives(directory: str | Path) -> list[ArchiveFile]:
    """Every dump in ``directory`` (not recursive), by symbol, kind, timeframe, period."""
    found = (parse_archive_name(p) for p in Path(directory).iterdir() if p.is_file())
    return sorted((f for f in found if f is not None), key=lambda f: (f.symbol, f.kind, f.timeframe or "", f.period))


def _read_lines(path: Path) -> list[str]:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.endswith(".csv")]
            if len(members) != 1:
                raise ValueError(f"{path}: expected one CSV in the zip, found {members}")
            data = archive.read(members[0])
    else:
        data = path.read_bytes()
    return data.decode("utf-8", errors="replace").splitlines()


def _split(lines: Iterable[str], n_columns: int) -> pd.DataFrame:
    """Rows of exactly ``n_columns`` string fields; a row with more or fewer is all NaN."""
    series = pd.Series(list(lines), dtype=object)
    if series.empty:
        return pd.DataFrame(columns=range(n_columns), dtype=object)
    parts = series.str.strip().str.split(",", expand=True)
    wrong = parts.notna().sum(axis=1) != n_columns
    parts = parts.reindex(columns=range(n_columns))
    parts[wrong] = np.nan
    return parts


def _numbers(raw: pd.DataFrame, column: int, name: str, bad: pd.Series) -> pd.Series:
    values = pd.to_numeric(raw[column], errors="coerce").astype("float64")
    _flag(bad, ~np.isfinite(values), f"field {name!r} is not a finite number")
    return values.fillna(0.0)


def _integers(raw: pd.DataFrame, column: int, name: str, bad: pd.Series) -> pd.Series:
    text = raw[column].astype(object).fillna("")
    ok = text.str.fullmatch(r"-?[0-9]{1,18}").astype(bool)
    _flag(bad, ~ok, f"field {name!r} is not an integer")
    return pd.to_numeric(text.where(ok, "0"), errors="coerce").fillna(0).astype("int64")


def _times_ms(raw: pd.DataFrame, column: int, name: str, bad: pd.Series) -> pd.Series:
    times = _integers(raw, column, name, bad)
    times = times.where(times < _US_FROM, times // 1000)  # µs (spot dumps from 2025) -> ms
    _flag(bad, times <= 0, f"field {name!r} is not a time after 1970")
    return times


def _flag(bad: pd.Series, mask, reason: str) -> None:
    """Record ``reason`` on the rows of ``mask`` that have no reason yet (the first one wins)."""
    mask = pd.Series(np.asarray(mask, dtype=bool), index=bad.index) & (bad == "")
    bad[mask] = reason


def _kline_frame(raw: pd.DataFrame, bad: pd.Series, info: ArchiveFile) -> pd.DataFrame:
    f = pd.DataFrame({"open_time": _times_ms(raw, 0, "open_time", bad)})
    for i, name in ((1, "open"), (2, "high"), (3, "low"), (4, "close")):
        f[name] = _numbers(raw, i, name, bad)
        _flag(bad, f[name] <= 0, f"field {name!r} is not a positive price")
    for i, name in ((5, "volume"), (7, "quote_volume")):
        f[name] = _numbers(raw, i, name, bad)
        _flag(bad, f[name] < 0, f"field {name!r} is negative")
    f["count"] = _integers(raw, 8, "count", bad)
    _flag(bad, f["count"] < 0, "field 'count' is negative")
    _flag(bad, f["high"] < f["low"], "field 'high' is below 'low'")
    step = TIMEFRAME_MS.get(info.timeframe or "")
    if step:
        _flag(bad, f["open_time"] % step != 0, f"field 'open_time' is not on a {info.timeframe} boundary")
    return f


def _agg_trade_frame(raw: pd.DataFrame, bad: pd.Series, info: ArchiveFile) -> pd.DataFrame:
    f = pd.DataFrame({name: _integers(raw, i, name, bad)
                      for i, name in ((0, "agg_trade_id"), (3, "first_trade_id"), (4, "last_trade_id"))})
    f["transact_time"] = _times_ms(raw, 5, "transact_time", bad)
    f["price"] = _numbers(raw, 1, "price", bad)
    _flag(bad, f["price"] <= 0, "field 'price' is not a positive price")
    f["quantity"] = _numbers(raw, 2, "quantity", bad)
    _flag(bad, f["quantity"] < 0, "field 'quantity' is negative")
    _flag(bad, f["last_trade_id"] < f["first_trade_id"], "field 'last_trade_id' is below 'first_trade_id'")
    maker = raw[6].astype(object).fillna("").str.strip().str.lower()
    _flag(bad, ~maker.isin(["true", "false"]), "field 'is_buyer_maker' is not true/false")
    f["is_buyer_maker"] = maker == "true"
    return f
