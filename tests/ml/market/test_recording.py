"""Reading recorded stream files: order, timestamps, counts, bad lines."""
from __future__ import annotations

import gzip
from pathlib import Path

from ml.market.events import OrderBookDelta, Trade
from ml.market.recording import (
    default_data_dir,
    default_spot_session,
    read_recording,
    to_ns,
)


def test_default_data_dir_is_next_to_the_repository(monkeypatch):
    monkeypatch.delenv("GOGO_DATA_DIR", raising=False)
    repo_root = Path(__file__).resolve().parents[3]

    assert default_data_dir() == repo_root.parent / "shared" / "data"


def test_default_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GOGO_DATA_DIR", str(tmp_path))

    assert default_data_dir() == tmp_path


def test_default_spot_session_lists_both_days_in_order(data_dir):
    session = default_spot_session(data_dir)

    assert list(session) == ["ETHUSDT", "BTCUSDT"]
    assert [p.name for p in session["BTCUSDT"]] == ["btcusdt_20240808.gz", "btcusdt_20240809.gz"]


def test_it_reads_two_files_as_one_stream_with_ns_timestamps(spot_recordings):
    reader = read_recording(spot_recordings["ETHUSDT"], "ETHUSDT")
    items = list(reader)

    assert reader.counts["deltas"] == 6470
    assert reader.counts["trades"] == 14515
    assert reader.counts["snapshots"] == 1
    assert reader.counts["ignored"] == 58758  # bookTicker
    assert reader.counts["malformed"] == 0
    assert len(items) == 6470 + 14515 + 1
    ts_init = [ts for ts, _ in items]
    assert ts_init == sorted(ts_init)  # file order is arrival order
    assert ts_init[0] == 1723161254036052868  # ns
    first_of_second_file = next(
        i for i, (_, e) in enumerate(items)
        if isinstance(e, OrderBookDelta) and e.first_update_id == 35346671850)
    assert [type(e).__name__ for _, e in items[:3]] == [
        "OrderBookDelta", "OrderBookDelta", "OrderBookSnapshot"]  # 2 diffs came before it
    assert items[first_of_second_file][0] == 1723161600001233484


def test_it_normalizes_microsecond_timestamps_of_dat_files(data_dir):
    path = data_dir / "orderbook" / "binance_spot" / "btcusdt_20230405.dat.gz"

    ts_init, event = next(iter(read_recording([path], "BTCUSDT")))

    assert ts_init == 1680652800004107 * 1000
    assert isinstance(event, Trade) and event.trade_id == 3071245454


def test_to_ns_scales_by_magnitude():
    assert to_ns(1723161254036052868) == 1723161254036052868
    assert to_ns(1680652800004107) == 1680652800004107000
    assert to_ns(1680652800004) == 1680652800004000000


def test_malformed_lines_are_counted_and_skipped(recorded_line, tmp_path):
    trade = recorded_line("binance_spot/ethusdt_20240808.gz",
                          lambda p: p.startswith(b'{"stream":"ethusdt@trade"'))
    broken_trade = trade.replace(b'"p":', b'"price":')
    path = tmp_path / "mixed.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"1723161254340863867 " + trade + b"\n")
        fh.write(b"1723161254340863868 " + broken_trade + b"\n")
        fh.write(b"1723161254340863869 {not json\n")
        fh.write(b"not-a-timestamp " + trade + b"\n")
        fh.write(b"1723161254340863870 " + trade + b"\n")

    reader = read_recording([path], "ETHUSDT")
    events = [event for _, event in reader]

    assert len(events) == 2
    assert reader.counts["malformed"] == 3
    assert reader.counts["lines"] == 5


def test_a_truncated_file_keeps_its_complete_lines(recorded_line, tmp_path):
    trade = recorded_line("binance_spot/ethusdt_20240808.gz",
                          lambda p: p.startswith(b'{"stream":"ethusdt@trade"'))
    data = gzip.compress(b"".join(b"%d " % (1723161254340863867 + i) + trade + b"\n"
                                  for i in range(200)))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) - 12])  # drop the gzip trailer and some data

    reader = read_recording([path], "ETHUSDT")
    n = sum(1 for _ in reader)

    assert reader.counts["truncated_files"] == 1
    assert 0 < n <= 200
    assert reader.counts["malformed"] == 0
