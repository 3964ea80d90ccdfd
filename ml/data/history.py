"""Historical OHLCV candles from the project's recorded CSV files.

The files live in the shared data directory (``$GOGO_DATA_DIR``, else ``<repo>/../shared/data``,
see its README section 3), never in the repository. Two layouts occur:

- ``open_time`` (int ms since the Unix epoch, UTC, candle open), optional ``open_time_utc``,
  ``open,high,low,close,volume`` (freqtrade and CryptoDataDownload exports);
- ``datetime`` / ``date`` / ``timestamp`` (UTC, naive strings) + ``open,high,low,close,volume``.

:func:`load_ohlcv_csv` turns either into one canonical frame:

==========  =======  =============================================
column      dtype    meaning
==========  =======  =============================================
open_time   int64    candle open, ms since epoch, UTC
open        float64  quote currency (USDT ~ USD)
high        float64  quote currency
low         float64  quote currency
close       float64  quote currency
volume      float64  base units (FTX files: USD notional, see README)
==========  =======  =============================================
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ml.market.events import Candle

logger = logging.getLogger(__name__)

OHLCV_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")
TIME_COLUMNS = ("datetime", "date", "timestamp")  # string-time alternatives to open_time
PRICE_COLUMNS = ("open", "high", "low", "close")

# open_time values outside this range are not ms (seconds would be ~1.7e9, us ~1.7e15).
_MS_MIN, _MS_MAX = 10**11, 10**14

# File name patterns of the training history (README section 3, freqtrade exports).
HISTORY_FILE_PATTERNS = {
    "1m": "ohlcv/binance_spot_{symbol}_1m_20240726-20240825.csv.gz",
    "1h": "ohlcv/binance_spot_{symbol}_1h_20240101-20240906.csv.gz",
    "1d": "ohlcv/binance_spot_{symbol}_1d_20200511-20241205.csv",
}


def history_files(data_dir: str | Path, symbol: str) -> dict[str, Path]:
    """Paths of the 1m, 1h and 1d Binance spot candle files for ``symbol`` (e.g. "ETHUSDT").

    Spans (UTC, candle open): 1m 2024-07-26 → 2024-08-25, 1h 2024-01-01 → 2024-09-06,
    1d 2020-05-11 → 2024-12-05.

    Raises:
        FileNotFoundError: a file is missing (the message names it).
    """
    data_dir = Path(data_dir)
    files = {tf: data_dir / pattern.format(symbol=symbol.upper())
             for tf, pattern in HISTORY_FILE_PATTERNS.items()}
    for tf, path in files.items():
        if not path.is_file():
            raise FileNotFoundError(f"{tf} history for {symbol} not found: {path}")
    return files


def load_ohlcv_csv(path: str | Path) -> pd.DataFrame:
    """Read one OHLCV CSV (``.csv`` or ``.csv.gz``) into the canonical frame (module docstring).

    Rows are sorted by ``open_time``; rows repeating an ``open_time`` are dropped (the last
    one in file order is kept, with a warning).

    Raises:
        ValueError: naming the file and the column, when a column is missing, a value is not
            numeric / NaN, ``open_time`` is not in ms, ``high < low``, a price is <= 0, a
            volume is < 0, or the times are not strictly increasing after sort and dedup.
    """
    path = Path(path)
    raw = pd.read_csv(path)
    df = pd.DataFrame({"open_time": _open_time_ms(raw, path)})
    for col in OHLCV_COLUMNS[1:]:
        if col not in raw.columns:
            raise ValueError(f"{path}: missing column {col!r} (have {list(raw.columns)})")
        values = pd.to_numeric(raw[col], errors="coerce").astype("float64")
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise ValueError(f"{path}: column {col!r} has a missing or non-numeric value "
                             f"at data row {row}")
        df[col] = values.to_numpy()

    df = df.sort_values("open_time", kind="stable")
    n_dup = int(df["open_time"].duplicated(keep="last").sum())
    if n_dup:
        logger.warning("%s: dropped %d rows with a repeated open_time", path, n_dup)
        df = df.drop_duplicates("open_time", keep="last")
    df = df.reset_index(drop=True)
    _validate(df, path)
    return df


def _open_time_ms(raw: pd.DataFrame, path: Path) -> np.ndarray:
    """The candle open times as int64 ms, from ``open_time`` or a UTC date/time column."""
    if "open_time" in raw.columns:
        ot = pd.to_numeric(raw["open_time"], errors="coerce")
        if ot.isna().any():
            raise ValueError(f"{path}: column 'open_time' has a missing or non-numeric value")
        values = ot.to_numpy().astype("int64")
        if len(values) and (values.min() < _MS_MIN or values.max() > _MS_MAX):
            raise ValueError(f"{path}: column 'open_time' is not in ms since epoch "
                             f"(range {values.min()}..{values.max()})")
        return values
    for col in TIME_COLUMNS:
        if col in raw.columns:
            try:
                # Naive strings are UTC in every file (README section 3).
                times = pd.to_datetime(raw[col], utc=True, format="mixed")
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}: column {col!r} is not a date/time: {exc}") from exc
            if times.isna().any():
                raise ValueError(f"{path}: column {col!r} has a missing date/time")
            return times.dt.as_unit("ms").astype("int64").to_numpy()
    raise ValueError(f"{path}: missing column 'open_time' (or one of {list(TIME_COLUMNS)}); "
                     f"have {list(raw.columns)}")


def _validate(df: pd.DataFrame, path: Path) -> None:
    """Raise ValueError naming file and column for impossible candles."""
    def first_time(mask: pd.Series) -> int:
        return int(df.loc[mask.to_numpy(), "open_time"].iloc[0])

    bad = df["high"] < df["low"]
    if bad.any():
        raise ValueError(f"{path}: column 'high' < 'low' in {int(bad.sum())} rows "
                         f"(first at open_time={first_time(bad)})")
    for col in PRICE_COLUMNS:
        bad = df[col] <= 0
        if bad.any():
            raise ValueError(f"{path}: column {col!r} has non-positive prices "
                             f"(first at open_time={first_time(bad)})")
    bad = df["volume"] < 0
    if bad.any():
        raise ValueError(f"{path}: column 'volume' is negative "
                         f"(first at open_time={first_time(bad)})")
    if len(df) > 1 and not (np.diff(df["open_time"].to_numpy()) > 0).all():
        raise ValueError(f"{path}: column 'open_time' is not strictly increasing after sort")


def frame_to_candles(df: pd.DataFrame, *, symbol: str, timeframe: str) -> list[Candle]:
    """Candle events from a canonical frame (e.g. to warm up the rings from history)."""
    cols = [df[c].to_numpy() for c in OHLCV_COLUMNS]
    return [Candle(symbol=symbol, timeframe=timeframe, open_time=int(t), open=float(o),
                   high=float(h), low=float(lo), close=float(c), volume=float(v))
            for t, o, h, lo, c, v in zip(*cols, strict=False)]


HISTORY_GLOB = "ohlcv/binance_spot_{symbol}_{timeframe}_*.csv*"
MERGE_TOLERANCE = 1e-3  # relative close difference two files may show on a shared candle


def discover_history(data_dir: str | Path, symbol: str,
                     timeframes: tuple[str, ...] = ("1m", "1h", "1d")) -> dict[str, list[Path]]:
    """Every ``binance_spot_{SYMBOL}_{tf}_*.csv[.gz]`` file of the data directory, per timeframe,
    sorted by name (their span is in the name). A timeframe without a file maps to []."""
    root = Path(data_dir)
    return {tf: sorted(root.glob(HISTORY_GLOB.format(symbol=symbol.upper(), timeframe=tf)))
            for tf in timeframes}


def merge_history(frames: list[pd.DataFrame], *, names: list[str] | None = None,
                  tolerance: float = MERGE_TOLERANCE) -> tuple[pd.DataFrame, dict]:
    """Merge canonical candle frames of one symbol and timeframe into one.

    Where files overlap, the row of the file listed LAST wins (pass the most precise source last)
    and the overlap is checked: closes must agree within ``tolerance`` (relative). The report counts
    shared candles and disagreements per pair, so coverage is visible rather than silently merged.

    Returns:
        (frame sorted by open_time without duplicates, report {"rows", "first_ms", "last_ms",
        "files": [...], "overlap_rows", "disagreements", "max_close_rel_diff"}).

    Raises:
        ValueError: no frame given.
    """
    if not frames:
        raise ValueError("no candle frame to merge")
    names = names or [f"frame {i}" for i in range(len(frames))]
    merged = frames[0]
    overlap = disagree = 0
    worst = 0.0
    for df in frames[1:]:
        shared = merged.merge(df[["open_time", "close"]], on="open_time", suffixes=("", "_new"))
        if len(shared):
            rel = (shared["close"] - shared["close_new"]).abs() / shared["close_new"]
            overlap += len(shared)
            disagree += int((rel > tolerance).sum())
            worst = max(worst, float(rel.max()))
        merged = pd.concat([merged, df]).drop_duplicates("open_time", keep="last")
    merged = merged.sort_values("open_time", kind="stable").reset_index(drop=True)
    report = {"rows": len(merged), "first_ms": int(merged["open_time"].iloc[0]),
              "last_ms": int(merged["open_time"].iloc[-1]), "files": list(names),
              "overlap_rows": overlap, "disagreements": disagree, "max_close_rel_diff": worst}
    if disagree:
        logger.warning("%s: %d of %d overlapping candles disagree by more than %.3g (max %.3g)",
                       names, disagree, overlap, tolerance, worst)
    return merged, report


def load_history(data_dir: str | Path, symbol: str,
                 timeframes: tuple[str, ...] = ("1m", "1h", "1d")) -> tuple[dict[str, pd.DataFrame], dict]:
    """All candle history of ``symbol`` in the data directory, merged per timeframe.

    Files are merged oldest-starting first, so a newer, more precise download wins on shared
    candles (the CryptoDataDownload 2017-2021 files round prices; README section 3).

    Returns:
        (timeframe -> canonical frame, coverage report per timeframe; see :func:`merge_history`).
        A timeframe without any file is absent from both dicts.

    Raises:
        ValueError: a file fails validation (load_ohlcv_csv).
    """
    out: dict[str, pd.DataFrame] = {}
    report: dict[str, dict] = {}
    for tf, paths in discover_history(data_dir, symbol, timeframes).items():
        if not paths:
            continue
        paths = sorted(paths, key=lambda p: _span_start(p.name))
        out[tf], report[tf] = merge_history([load_ohlcv_csv(p) for p in paths], names=[p.name for p in paths])
    return out, report


def _span_start(name: str) -> str:
    """The span token of a history file name (``..._1m_20240726-20240825.csv.gz`` -> "20240726")."""
    token = name.split("_")[-1].split(".")[0]
    return token.split("-")[0].ljust(8, "0")
