"""The recorded websocket samples of other venues (data README section 4), read once per session."""
from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import zstandard

from ml.market.events import Level


@dataclass(frozen=True)
class Frame:
    """One received websocket frame: connection id and the raw text exactly as received."""

    conn: str
    data: str

    def json(self):
        return orjson.loads(self.data)


def read_ws_sample(path: Path) -> list[Frame]:
    """The ``recv`` records of a cryptofeed ``.jsonl.zst`` recording (``http`` / ``send`` skipped)."""
    frames = []
    with path.open("rb") as fh:
        reader = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(fh), encoding="utf-8")
        for line in reader:
            record = orjson.loads(line)
            if record["t"] == "recv":
                frames.append(Frame(record["conn"], record["data"]))
    return frames


@pytest.fixture(scope="session")
def ws_sample(data_dir: Path) -> Callable[[str], list[Frame]]:
    """``ws_sample("BYBIT")``: the received frames of ``ws_samples/cryptofeed_BYBIT.jsonl.zst``."""
    cache: dict[str, list[Frame]] = {}

    def load(venue: str) -> list[Frame]:
        if venue not in cache:
            cache[venue] = read_ws_sample(data_dir / "ws_samples" / f"cryptofeed_{venue}.jsonl.zst")
        return cache[venue]

    return load


class LocalBook:
    """A plain price -> size book for the tests: apply levels (size 0 deletes), read the top."""

    def __init__(self, bids: tuple[Level, ...] = (), asks: tuple[Level, ...] = ()) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.apply(bids, asks)

    def apply(self, bids: tuple[Level, ...], asks: tuple[Level, ...]) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, size in levels:
                if size == 0:
                    side.pop(price, None)
                else:
                    side[price] = size

    def top(self, depth: int) -> tuple[list[Level], list[Level]]:
        bids = sorted(self.bids.items(), reverse=True)[:depth]
        asks = sorted(self.asks.items())[:depth]
        return bids, asks

    def truncate(self, depth: int) -> None:
        """Keep the best ``depth`` levels a side (venues with a fixed book depth drop the rest)."""
        bids, asks = self.top(depth)
        self.bids, self.asks = dict(bids), dict(asks)
