"""Market tapes on disk: segments, the header written last, streaming past MAX_SECONDS, and the
damaged files a backtest must not trust."""
import json
import logging

import pytest

from ml.backtest import market_tape
from ml.backtest.market_tape import DiskTape, MarketTape, TapeError, TapeSecond, TapeWriter, tape_get

T0 = 1_723_161_255_000


def second(i: int) -> TapeSecond:
    return TapeSecond(ts=T0 + 1000 * i, candles={"ETHUSDT": i}, frames={}, gaps={}, trades=(i,), book=None,
                      sync_gaps={"ETHUSDT": 0})


@pytest.fixture(autouse=True)
def small(monkeypatch):
    monkeypatch.setattr(market_tape, "MAX_SECONDS", 40)
    monkeypatch.setattr(market_tape, "SEGMENT_SECONDS", 16)
    market_tape._MEMO.clear()
    yield
    market_tape._MEMO.clear()


def record(tmp_path, n: int, key: str = "k1", complete: bool = True) -> None:
    writer = TapeWriter(key, T0 + 1000 * (n - 1), tmp_path)
    for i in range(n):
        writer.append(second(i))
    writer.finish(complete)


def test_a_short_tape_is_kept_in_memory_and_loads_whole_in_another_process(tmp_path):
    record(tmp_path, 30)
    assert isinstance(market_tape._MEMO["k1"], MarketTape)
    market_tape._MEMO.clear()  # as a new process
    tape = tape_get("k1", None, tmp_path)
    assert isinstance(tape, MarketTape) and [s.trades for s in tape.replay(None)] == [(i,) for i in range(30)]
    assert market_tape._MEMO["k1"] is tape
    assert list(tmp_path.glob("*.tmp")) == []


def test_a_tape_longer_than_max_seconds_streams_from_its_file_in_order(tmp_path):
    record(tmp_path, 100)  # 7 segments: 6 x 16 + 4
    assert market_tape._MEMO == {}  # too long to keep
    tape = tape_get("k1", None, tmp_path)
    assert isinstance(tape, DiskTape) and tape.n_seconds == 100
    assert [s.ts for s in tape.replay(None)] == [T0 + 1000 * i for i in range(100)]
    assert [s.trades[0] for s in tape.replay(T0 + 1000 * 20)] == list(range(21))
    header = json.loads((tmp_path / "tape-k1.pickle").read_bytes()[8:256])
    assert header == {"format": 2, "key": "k1", "covered_to_ms": None, "seconds": 100,
                      "bytes": (tmp_path / "tape-k1.pickle").stat().st_size}


def test_a_truncated_run_covers_only_its_seconds(tmp_path):
    record(tmp_path, 50, complete=False)
    market_tape._MEMO.clear()
    assert tape_get("k1", T0 + 1000 * 49, tmp_path) is not None
    assert tape_get("k1", T0 + 1000 * 50, tmp_path) is None and tape_get("k1", None, tmp_path) is None
    assert tape_get("k2", None, tmp_path) is None


def test_a_file_of_another_size_than_its_header_says_is_not_used(tmp_path, caplog):
    record(tmp_path, 100)
    path = tmp_path / "tape-k1.pickle"
    path.write_bytes(path.read_bytes()[:-100])
    with caplog.at_level(logging.WARNING, logger="ml.backtest.market_tape"):
        assert tape_get("k1", None, tmp_path) is None
    assert "replaying the recordings" in caplog.text


def test_a_file_that_is_not_a_tape_is_not_used(tmp_path, caplog):
    (tmp_path / "tape-k1.pickle").write_bytes(b"\x80\x05garbage")
    with caplog.at_level(logging.WARNING, logger="ml.backtest.market_tape"):
        assert tape_get("k1", None, tmp_path) is None
    assert "unreadable" in caplog.text


def test_a_tape_damaged_midway_raises_a_clear_error_and_is_deleted(tmp_path):
    record(tmp_path, 100)
    path = tmp_path / "tape-k1.pickle"
    raw = bytearray(path.read_bytes())
    raw[-60:] = b"\x00" * 60  # the last segment's tail: the file keeps its size
    path.write_bytes(bytes(raw))
    tape = tape_get("k1", None, tmp_path)
    seen = []
    with pytest.raises(TapeError, match=r"damaged after 96 of 100 seconds .* the next run replays the recordings"):
        for s in tape.replay(None):
            seen.append(s)
    assert len(seen) == 96 and not path.exists()


def test_an_aborted_recording_leaves_nothing(tmp_path):
    writer = TapeWriter("k1", None, tmp_path)
    for i in range(20):
        writer.append(second(i))
    writer.abort()
    assert list(tmp_path.iterdir()) == [] and market_tape._MEMO == {}


def test_a_new_tape_deletes_its_familys_tapes_made_by_older_code(tmp_path):
    record(tmp_path, 10, key="famA-code1")
    record(tmp_path, 10, key="famB-code1")
    record(tmp_path, 10, key="famA-code2")  # same recording and settings, the market step's code changed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tape-famA-code2.pickle", "tape-famB-code1.pickle"]
    market_tape._MEMO.clear()
    assert tape_get("famA-code2", None, tmp_path) is not None and tape_get("famA-code1", None, tmp_path) is None


def test_the_key_separates_the_recording_and_settings_from_the_code():
    key = market_tape.tape_key(("rec", 1), ["spec"], "ETHUSDT", 200, 250)
    family, code = key.split("-")
    assert len(family) == len(code) == 16
    assert market_tape.tape_key(("rec", 1), ["spec"], "ETHUSDT", 200, 250) == key
    assert market_tape.tape_key(("rec", 2), ["spec"], "ETHUSDT", 200, 250).split("-")[1] == code
    assert market_tape.tape_key(("rec", 1), ["spec"], "BTCUSDT", 200, 250).split("-")[0] != family


def test_a_tape_that_cannot_be_written_is_logged_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    writer = TapeWriter("k1", None, tmp_path)
    monkeypatch.setattr(market_tape.pickle, "dump", full_disk)
    with caplog.at_level(logging.WARNING, logger="ml.backtest.market_tape"):
        for i in range(40):  # two segments' worth: the first flush fails
            writer.append(second(i))
        writer.finish(True)
    assert "not stored" in caplog.text and "No space left" in caplog.text
    assert list(tmp_path.iterdir()) == []  # no partial file
    assert [s.trades[0] for s in market_tape._MEMO["k1"].replay(None)] == list(range(40))  # short: kept in memory
