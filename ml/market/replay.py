"""A replay venue: recorded Binance streams of several instruments, merged in exchange time.

Ordering. Each symbol's events are stable-sorted by ``ts_event`` (depth ``E``, trade ``T``),
then the symbols are merged by ``ts_event`` (ties: symbols in the order given, then file
order). Trades do not arrive in ``T`` order relative to depth messages: in the 2024-08 spot
files ~300 BTC trades arrive after a depth message of the next exchange second, so sorting by
exchange time is what lets a second be closed as soon as a later event is seen. A spot REST
snapshot has no ``E``: it takes the ``ts_event`` of the event before it in file order (of the
event after it if it is the first event). Futures snapshots keep their own ``E``. Either way,
the synchronizer buffers deltas until the snapshot, so its position cannot break the sync.

Truth book. The venue keeps its own book per symbol: the recorded snapshot plus every recorded
delta with ``u`` above the book's id, in the order ``events()`` reaches them, including the
deltas it withholds for fault injection. It is brought up to date lazily, when asked for, so a
replay that never resyncs pays nothing for it. :meth:`ReplayVenue.snapshot` returns that book
(``lastUpdateId`` = last ``u`` applied), as a REST snapshot taken mid-stream would. Called
before the stream reaches the recorded snapshot, it returns the recorded snapshot itself (a
REST call returns the book as of the call; the deltas it covers are dropped by the u rule).
"""
from __future__ import annotations

import dataclasses
import heapq
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

from ml.market.binance import MarketEvent
from ml.market.errors import MarketDataError
from ml.market.events import OrderBookDelta, OrderBookSnapshot
from ml.market.orderbook import OrderBook
from ml.market.recording import read_recording

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _SymbolReplay:
    """One symbol's events sorted by exchange time, and the venue's truth book."""

    symbol: str
    events: list[MarketEvent]  # sorted by effective ts_event (stable)
    keys: list[int]  # effective ts_event of each event, ms
    delta_positions: list[int]  # position in ``events`` of the k-th delta in file order
    dropped: set[int]  # positions in ``events`` withheld from the consumer
    recorded_snapshot: OrderBookSnapshot | None
    counts: Counter[str]
    truth: OrderBook = field(default_factory=OrderBook)
    truth_id: int | None = None
    truth_ts: int | None = None
    cursor: int = 0  # events[:cursor] have been reached by events()
    truth_pos: int = 0  # events[:truth_pos] are in the truth book


class ReplayVenue:
    """Recorded streams served as one exchange-time ordered event stream (module docstring).

    Args:
        recordings: ``{symbol: [gz paths of one run, in order]}`` (see
            ``recording.default_spot_session``).
        drop_deltas: ``{symbol: {i, ...}}`` indices, 0-based among that symbol's delta messages
            in file order, that ``events()`` does not deliver (fault injection for gap tests).
            ValueError if a symbol has no recording or an index is out of range.

    ``counts[symbol]`` holds the recording counts (lines, trades, deltas, snapshots, ignored,
    malformed, ...) plus ``withheld`` (deltas not delivered). Loading reads every file at once.
    Raises OSError if a file cannot be read.
    """

    def __init__(self, recordings: dict[str, list[Path]],
                 drop_deltas: dict[str, set[int]] | None = None) -> None:
        self._streams = [_load_symbol(sym.upper(), paths) for sym, paths in recordings.items()]
        self._set_drops(drop_deltas or {})

    def with_drops(self, drop_deltas: dict[str, set[int]]) -> ReplayVenue:
        """A venue over the same loaded events with other ``drop_deltas`` (no re-read).

        The events are shared (read-only); truth books and counts are the new venue's own.
        """
        other = object.__new__(ReplayVenue)
        other._streams = [dataclasses.replace(s, counts=Counter(s.counts), truth=OrderBook())
                          for s in self._streams]
        for s in other._streams:
            _reset_truth(s)
        other._set_drops(drop_deltas)
        return other

    def _set_drops(self, drop_deltas: dict[str, set[int]]) -> None:
        self._by_symbol = {s.symbol: s for s in self._streams}
        self.counts: dict[str, Counter[str]] = {s.symbol: s.counts for s in self._streams}
        drops = {sym.upper(): ids for sym, ids in drop_deltas.items()}
        unknown = set(drops) - set(self._by_symbol)
        if unknown:
            raise ValueError(f"drop_deltas names symbols without a recording: {sorted(unknown)}")
        for s in self._streams:
            ids = drops.get(s.symbol, set())
            bad = sorted(k for k in ids if not 0 <= k < len(s.delta_positions))
            if bad:
                raise ValueError(f"{s.symbol}: drop_deltas indices out of range "
                                 f"0..{len(s.delta_positions) - 1}: {bad}")
            s.dropped = {s.delta_positions[k] for k in ids}
            s.counts["withheld"] = len(s.dropped)

    @property
    def symbols(self) -> list[str]:
        """Instruments in the order given."""
        return [s.symbol for s in self._streams]

    def events(self) -> Iterator[MarketEvent]:
        """Yield every delivered event of every symbol in exchange-time order.

        Each call replays from the start (truth books reset); run one iteration at a time.
        A snapshot's own ``ts_event`` may be None (spot); its place in the order is defined in
        the module docstring.
        """
        for s in self._streams:
            _reset_truth(s)
        ranked = [zip(s.keys, repeat(i), range(len(s.events))) for i, s in enumerate(self._streams)]
        for _, i, pos in heapq.merge(*ranked):
            s = self._streams[i]
            s.cursor = pos + 1  # the truth book catches up lazily, only when asked for
            if pos not in s.dropped:
                yield s.events[pos]

    def snapshot(self, symbol: str) -> OrderBookSnapshot:
        """The venue's current book of ``symbol`` as a REST depth snapshot (all levels).

        ``last_update_id`` is the last ``u`` applied to the truth book; ``ts_event`` the ``E``
        (ms) of that delta (None before any). Raises MarketDataError if the recording of
        ``symbol`` has no snapshot (the book cannot be known), KeyError for an unknown symbol.
        """
        s = self._by_symbol[symbol.upper()]
        if s.recorded_snapshot is None:
            raise MarketDataError(f"{symbol}: the recording has no snapshot; book unknown")
        _catch_up(s)
        if s.truth_id is None:
            return s.recorded_snapshot
        return OrderBookSnapshot(symbol=s.symbol, last_update_id=s.truth_id,
                                 bids=tuple(s.truth.levels("bid")),
                                 asks=tuple(s.truth.levels("ask")), ts_event=s.truth_ts)

    def truth_book(self, symbol: str) -> OrderBook:
        """The venue's own current book of ``symbol`` (live object; copy it to keep it).

        Empty until the stream has reached a delta, or if the recording has no snapshot.
        """
        s = self._by_symbol[symbol.upper()]
        _catch_up(s)
        return s.truth


def _reset_truth(s: _SymbolReplay) -> None:
    s.truth.clear()
    s.truth_id = s.truth_ts = None
    s.cursor = s.truth_pos = 0


def _catch_up(s: _SymbolReplay) -> None:
    """Apply to the truth book every delta ``events()`` has reached since the last call."""
    if s.recorded_snapshot is None:
        return
    for event in s.events[s.truth_pos:s.cursor]:
        if type(event) is not OrderBookDelta:
            continue
        if s.truth_id is None:
            s.truth.apply_snapshot(s.recorded_snapshot)
            s.truth_id = s.recorded_snapshot.last_update_id
        if event.final_update_id > s.truth_id:
            s.truth.apply_levels(event.bids, event.asks)
            s.truth_id = event.final_update_id
            s.truth_ts = event.ts_event
    s.truth_pos = s.cursor


def _load_symbol(symbol: str, paths: list[Path]) -> _SymbolReplay:
    """Read one symbol's recording, give snapshots a time, stable-sort by exchange time."""
    reader = read_recording(paths, symbol)
    events: list[MarketEvent] = []
    keys: list[int | None] = []
    snapshot: OrderBookSnapshot | None = None
    for _, event in reader:
        if snapshot is None and type(event) is OrderBookSnapshot:
            snapshot = event
        keys.append(event.ts_event)
        events.append(event)
    _fill_snapshot_times(keys)
    order = sorted(range(len(events)), key=keys.__getitem__)  # stable
    sorted_events = [events[i] for i in order]
    rank = [0] * len(order)
    for r, i in enumerate(order):
        rank[i] = r
    delta_positions = [rank[i] for i, e in enumerate(events) if type(e) is OrderBookDelta]
    if snapshot is None:
        logger.warning("%s: no snapshot in %s; the book cannot be rebuilt", symbol,
                       [p.name for p in paths])
    return _SymbolReplay(symbol=symbol, events=sorted_events, keys=[keys[i] for i in order],
                         delta_positions=delta_positions, dropped=set(),
                         recorded_snapshot=snapshot, counts=reader.counts)


def _fill_snapshot_times(keys: list[int | None]) -> None:
    """Give each None key (spot snapshot) the previous key, or the next one if it is first."""
    prev: int | None = None
    for i, key in enumerate(keys):
        if key is None:
            keys[i] = prev
        else:
            prev = key
    nxt: int | None = None
    for i in range(len(keys) - 1, -1, -1):
        if keys[i] is None:
            keys[i] = nxt if nxt is not None else 0
        else:
            nxt = keys[i]
