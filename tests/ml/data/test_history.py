"""ml.data.history against the recorded OHLCV files (shared data README section 3)."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from ml.data.history import (
    frame_to_candles,
    history_files,
    load_ohlcv_csv,
)
from ml.market.recording import default_data_dir

DATA_DIR = default_data_dir()
OHLCV = DATA_DIR / "ohlcv"

H = "open_time,open,high,low,close,volume\n"


def write(tmp_path: Path, text: str, name: str = "c.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_it_loads_an_open_time_gz_file_exactly() -> None:
    df = load_ohlcv_csv(OHLCV / "binance_spot_ETHUSDT_1m_20240726-20240825.csv.gz")
    assert list(df.columns) == ["open_time", "open", "high", "low", "close", "volume"]
    assert df["open_time"].dtype == np.int64 and df["close"].dtype == np.float64
    assert len(df) == 43_208
    first = df.iloc[0]
    assert first["open_time"] == 1_722_003_360_000  # 2024-07-26 14:16 UTC
    assert first[["open", "high", "low", "close", "volume"]].tolist() == pytest.approx(
        [3262.93, 3270.42, 3262.93, 3268.6, 709.1457])
    assert (np.diff(df["open_time"]) == 60_000).all()  # README: no gaps
    # README cross-check with the order-book recording: ETHUSDT 2024-08-08 23:59 closes 2682.50
    row = df[df["open_time"] == 1_723_161_540_000]
    assert row["close"].item() == pytest.approx(2682.50)


def test_it_reads_date_datetime_and_timestamp_columns_as_utc_ms() -> None:
    daily = load_ohlcv_csv(OHLCV / "binance_spot_ETHUSDT_1d_2024.csv")
    assert len(daily) == 367
    assert daily["open_time"].iloc[0] == 1_704_067_200_000  # 2024-01-01 00:00 UTC
    assert daily["close"].iloc[0] == pytest.approx(2352.04)
    minute = load_ohlcv_csv(OHLCV / "binance_spot_ETHUSDT_1m_2024-01.csv.gz")
    assert minute["open_time"].iloc[1] == 1_704_067_260_000
    ftx = load_ohlcv_csv(OHLCV / "ftx_BTC-PERP_1m_20211231-20220201.csv.gz")
    assert ftx["open_time"].iloc[0] == 1_640_991_660_000  # 2021-12-31 23:01 UTC
    assert len(ftx) == 45_031


def test_it_sorts_and_drops_repeated_open_times(tmp_path: Path) -> None:
    path = tmp_path / "c.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(H + "1722003420000,2,3,1,2,5\n1722003360000,1,2,1,1,4\n"
                 "1722003420000,2,4,1,3,6\n")
    df = load_ohlcv_csv(path)
    assert df["open_time"].tolist() == [1_722_003_360_000, 1_722_003_420_000]
    assert df["close"].tolist() == [1.0, 3.0]  # the last repeated row wins


@pytest.mark.parametrize("text, fragment", [
    ("open_time,open,high,low,close\n1722003360000,1,2,1,1\n", "'volume'"),
    ("time,open,high,low,close,volume\n1,1,2,1,1,1\n", "'open_time'"),
    (H + "1722003360000,1,1,2,1,1\n", "'high' < 'low'"),
    (H + "1722003360000,1,2,1,x,1\n", "'close'"),
    (H + "1722003360,1,2,1,1,1\n", "not in ms"),
    (H + "1722003360000,1,2,1,1,-1\n", "'volume'"),
    (H + "1722003360000,0,2,1,1,1\n", "'open'"),
])
def test_it_names_file_and_column_on_bad_input(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as err:
        load_ohlcv_csv(path)
    assert fragment in str(err.value) and str(path) in str(err.value)


def test_history_files_point_at_the_training_files() -> None:
    files = history_files(DATA_DIR, "ethusdt")
    assert {tf: p.name for tf, p in files.items()} == {
        "1m": "binance_spot_ETHUSDT_1m_20240726-20240825.csv.gz",
        "1h": "binance_spot_ETHUSDT_1h_20240101-20240906.csv.gz",
        "1d": "binance_spot_ETHUSDT_1d_20200511-20241205.csv",
    }
    with pytest.raises(FileNotFoundError, match="DOGEUSDT"):
        history_files(DATA_DIR, "DOGEUSDT")


def test_data_dir_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv("GOGO_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("GOGO_DATA_DIR")
    assert default_data_dir().parts[-2:] == ("shared", "data")


def test_frame_to_candles_keeps_values(tmp_path: Path) -> None:
    df = load_ohlcv_csv(write(tmp_path, H + "1722003360000,1.5,2.5,1.0,2.0,7.25\n"))
    (candle,) = frame_to_candles(df, symbol="ETHUSDT", timeframe="1m")
    assert (candle.open_time, candle.open, candle.high, candle.low, candle.close,
            candle.volume) == (1_722_003_360_000, 1.5, 2.5, 1.0, 2.0, 7.25)
