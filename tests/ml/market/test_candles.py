"""1 s candles from recorded trades, and rollups, against the published candle files."""
from __future__ import annotations

import pandas as pd
import pytest

from ml.market.candles import SecondCandleBuilder, rollup
from ml.market.events import Candle, Trade
from tests.ml.market.recorded import FIRST_SECOND

DERIVED_1S = "ohlcv/derived/binance_spot_{symbol}_1s_20240808T2354-20240809T0005.csv"
FTRADE_1M = "ohlcv/binance_spot_{symbol}_1m_20240726-20240825.csv.gz"


def _by_open_time(candles: list[Candle]) -> dict[int, Candle]:
    return {c.open_time: c for c in candles}


@pytest.mark.parametrize(("symbol", "empty_seconds"), [("ETHUSDT", 41), ("BTCUSDT", 6)])
def test_session_1s_candles_equal_the_derived_file(spot_run, data_dir, symbol, empty_seconds):
    expected = pd.read_csv(data_dir / DERIVED_1S.format(symbol=symbol))
    ours = _by_open_time(spot_run.candles[symbol])

    assert len(expected) == 649
    assert set(ours) - set(expected.open_time) == {FIRST_SECOND}  # our partial first second
    for row in expected.itertuples():
        c = ours[row.open_time]
        assert (c.open, c.high, c.low, c.close) == (row.open, row.high, row.low, row.close)
        assert c.volume == pytest.approx(row.volume, rel=1e-9, abs=1e-12)
        assert c.quote_volume == pytest.approx(row.quote_volume, rel=1e-9, abs=1e-9)
        assert c.trade_count == row.trade_count
    assert sum(c.trade_count == 0 for c in ours.values()) == empty_seconds


@pytest.mark.parametrize("symbol", ["ETHUSDT", "BTCUSDT"])
def test_rollup_of_session_seconds_equals_the_recorded_1m_candles(spot_run, data_dir, symbol):
    minutes = rollup(spot_run.candles[symbol], "1m")
    reference = pd.read_csv(data_dir / FTRADE_1M.format(symbol=symbol)).set_index("open_time")

    # 23:54 and 00:05 are partial in the recording: dropped. 23:55 .. 00:04 remain.
    assert [m.open_time for m in minutes] == list(range(1723161300000, 1723161900000, 60_000))
    for m in minutes:
        row = reference.loc[m.open_time]
        assert (m.open, m.high, m.low, m.close) == (row.open, row.high, row.low, row.close)
        assert m.volume == pytest.approx(row.volume, rel=1e-9)
        assert m.timeframe == "1m" and m.symbol == symbol


def test_the_btc_2359_minute_has_the_values_quoted_in_the_data_readme(spot_run):
    minute = _by_open_time(rollup(spot_run.candles["BTCUSDT"], "1m"))[1723161540000]

    assert (minute.open, minute.high, minute.low, minute.close) == (
        61717.64, 61743.50, 61666.17, 61685.99)
    assert minute.volume == pytest.approx(32.41946, rel=1e-12)
    assert minute.trade_count == sum(
        c.trade_count for c in spot_run.candles["BTCUSDT"]
        if 1723161540000 <= c.open_time < 1723161600000)


@pytest.fixture(scope="module")
def eth_1m(data_dir) -> list[Candle]:
    frame = pd.read_csv(data_dir / FTRADE_1M.format(symbol="ETHUSDT"))
    return [Candle("ETHUSDT", "1m", int(r.open_time), r.open, r.high, r.low, r.close, r.volume)
            for r in frame.itertuples()]


@pytest.mark.parametrize(("timeframe", "reference", "count"), [
    ("1h", "ohlcv/binance_spot_ETHUSDT_1h_20240101-20240906.csv.gz", 719),
    ("1d", "ohlcv/binance_spot_ETHUSDT_1d_20200511-20241205.csv", 29),
])
def test_rollup_of_a_month_of_1m_candles_equals_the_recorded_hours_and_days(
        data_dir, eth_1m, timeframe, reference, count):
    rolled = rollup(eth_1m, timeframe)
    expected = pd.read_csv(data_dir / reference).set_index("open_time")

    assert len(rolled) == count  # the partial first and last hour / day are dropped
    for c in rolled:
        row = expected.loc[c.open_time]
        assert (c.open, c.high, c.low, c.close) == (row.open, row.high, row.low, row.close)
        assert c.volume == pytest.approx(row.volume, rel=1e-9)


def test_rollup_drops_a_period_with_a_missing_candle(eth_1m):
    hours = rollup(eth_1m[:600], "1h")
    holed = rollup(eth_1m[:100] + eth_1m[101:600], "1h")

    assert len(holed) == len(hours) - 1


def test_rollup_refuses_mixed_or_unordered_input(eth_1m):
    with pytest.raises(ValueError, match="cannot roll '1m' candles up to '1m'"):
        rollup(eth_1m[:5], "1m")
    with pytest.raises(ValueError, match="not strictly increasing"):
        rollup([eth_1m[1], eth_1m[0]], "1h")
    with pytest.raises(ValueError, match="timeframe must be one of"):
        rollup(eth_1m[:5], "5m")


def _trade(ts: int, price: float, size: float, trade_id: int) -> Trade:
    return Trade("ETHUSDT", ts, trade_id, price, size, is_buyer_maker=False)


def test_a_second_without_trades_is_flat_at_the_previous_close():
    builder = SecondCandleBuilder("ETHUSDT")
    assert builder.close(1723161256000) is None  # nothing traded yet

    builder.on_trade(_trade(1723161257100, 2682.81, 0.5, 1))
    builder.on_trade(_trade(1723161257900, 2683.2, 0.25, 2))
    traded = builder.close(1723161257000)
    empty = builder.close(1723161258000)

    assert (traded.open, traded.high, traded.low, traded.close) == (2682.81, 2683.2, 2682.81,
                                                                    2683.2)
    assert traded.quote_volume == pytest.approx(2682.81 * 0.5 + 2683.2 * 0.25)
    assert traded.trade_count == 2
    assert (empty.open, empty.high, empty.low, empty.close) == (2683.2,) * 4
    assert (empty.volume, empty.quote_volume, empty.trade_count) == (0.0, 0.0, 0)


def test_a_trade_for_a_closed_second_is_counted_late_and_ignored():
    builder = SecondCandleBuilder("ETHUSDT")
    builder.on_trade(_trade(1723161257100, 2682.81, 0.5, 1))
    builder.close(1723161257000)

    builder.on_trade(_trade(1723161257999, 2690.0, 1.0, 2))

    assert builder.late_trades == 1
    assert builder.close(1723161258000).close == 2682.81
    with pytest.raises(ValueError, match="multiple of 1000"):
        builder.close(1723161258500)
