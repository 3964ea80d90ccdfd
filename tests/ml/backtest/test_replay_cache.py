"""The parsed-recordings cache: parsed once, then served from memory or disk, never stale."""
import pytest

from ml.backtest import replay_cache
from ml.market.recording import default_spot_session
from ml.market.replay import ReplayVenue


def first_events(venue: ReplayVenue, n: int = 2000) -> list:
    out = []
    for event in venue.events():
        out.append(event)
        if len(out) == n:
            break
    return out


def test_the_recordings_are_parsed_once_and_then_loaded_from_disk_unchanged(tmp_path, monkeypatch):
    recordings = default_spot_session()
    replay_cache._MEMO.clear()
    parsed = replay_cache.replay_venue_load(recordings, tmp_path)
    assert len(list(tmp_path.glob("replay-*.pickle"))) == 1

    replay_cache._MEMO.clear()  # a new process: only the file is left

    def no_parsing(self, *args, **kwargs):
        raise AssertionError("parsed again")

    monkeypatch.setattr(ReplayVenue, "__init__", no_parsing)
    loaded = replay_cache.replay_venue_load(recordings, tmp_path)
    again = replay_cache.replay_venue_load(recordings, tmp_path)  # from memory
    assert loaded is not again and loaded.counts == parsed.counts
    assert first_events(loaded) == first_events(parsed) == first_events(again)


def test_a_changed_recording_is_parsed_again(tmp_path, monkeypatch):
    recordings = default_spot_session()
    replay_cache._MEMO.clear()
    replay_cache.replay_venue_load(recordings, tmp_path)
    monkeypatch.setattr(replay_cache, "FORMAT", replay_cache.FORMAT + 1)  # as a new size or mtime would
    calls = []
    real_init = ReplayVenue.__init__

    def counting(self, *args, **kwargs):
        calls.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(ReplayVenue, "__init__", counting)
    replay_cache.replay_venue_load(recordings, tmp_path)
    assert calls == [1] and len(list(tmp_path.glob("replay-*.pickle"))) == 2


def test_a_missing_recording_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        replay_cache.replay_venue({"ETHUSDT": [tmp_path / "nope.gz"]}, tmp_path)


def test_the_backtest_venue_loads_the_recordings_only_when_first_used(tmp_path, monkeypatch):
    recordings = default_spot_session()
    replay_cache._MEMO.clear()
    loads = []
    real_load = replay_cache.replay_venue_load

    def counting(*args, **kwargs):
        loads.append(1)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(replay_cache, "replay_venue_load", counting)
    venue = replay_cache.replay_venue(recordings, tmp_path)
    assert venue.symbols == [s.upper() for s in recordings] and loads == []  # a warm market tape stops here
    assert venue.cache_key == replay_cache._key(recordings)
    assert first_events(venue) == first_events(real_load(recordings, tmp_path)) and loads == [1]
    assert venue.snapshot(venue.symbols[0]) is not None and loads == [1]
