"""Keep a local order book in sync with Binance diff-depth streams.

Rules, from Binance's "How to manage a local order book correctly":

- Spot (Binance spot API docs, WebSocket Streams, "How to manage a local order book correctly",
  developers.binance.com/docs/binance-spot-api-docs/web-socket-streams): buffer the stream;
  get a snapshot; drop any event with ``u <= lastUpdateId``; the first processed event must
  have ``U <= lastUpdateId + 1 <= u``; then each new event's ``U`` must equal the previous
  event's ``u + 1``.
- USD-M futures (developers.binance.com/docs/derivatives/usds-margined-futures/
  websocket-market-streams/How-to-manage-a-local-order-book-correctly): drop any event with
  ``u < lastUpdateId``; the first processed event must have ``U <= lastUpdateId <= u``; then
  each new event's ``pu`` must equal the previous event's ``u``, "otherwise initialize the
  process from step 3" (a new snapshot).

Both: quantities are absolute, 0 removes the level, removing an absent level is normal.

- Snapshot-only venues (rule ``"snapshot"``: a venue client such as ccxt.pro that keeps the book
  itself and hands over whole books, e.g. Bybit v5 ``orderbook.{depth}`` rebuilt from its own
  snapshot + deltas with ``u``): every snapshot replaces the book; one whose ``lastUpdateId`` is
  not newer than the last one loaded or refused is stale and ignored (counted ``stale_snapshots``);
  a crossed one, or one with invalid levels, is rejected (counted ``rejected``) and the book stays
  unsynced, unpublished, until the next good snapshot. Deltas are refused (ValueError).
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

from ml.market.errors import SequenceGap
from ml.market.events import OrderBookDelta, OrderBookSnapshot
from ml.market.gridbook import GridBook, InvalidLevels
from ml.market.orderbook import OrderBook

logger = logging.getLogger(__name__)

SyncRule = Literal["spot", "futures", "snapshot"]
SYNC_RULES = ("spot", "futures", "snapshot")
SnapshotSource = Callable[[str], OrderBookSnapshot]

MAX_BUFFER = 100_000  # deltas kept while waiting for a snapshot (the oldest are discarded)
MAX_RESYNC_ATTEMPTS = 3  # snapshots fetched in a row before waiting for the next delta


@dataclass(slots=True)
class SyncStats:
    """Counters of one synchronizer (deltas are diff-depth messages)."""

    deltas_applied: int = 0
    deltas_dropped: int = 0  # already covered by the snapshot / local book
    gaps: int = 0  # chain breaks and crossed books
    resyncs: int = 0  # snapshots loaded after a gap
    level_updates: int = 0  # price levels set or deleted by applied deltas
    snapshots: int = 0  # snapshots loaded, initial one included
    rejected: int = 0  # deltas / snapshots with invalid levels (nothing applied); rule "snapshot": also crossed ones
    stale_snapshots: int = 0  # rule "snapshot": not newer than the book, ignored

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class BookSynchronizer:
    """Feed deltas and snapshots of one instrument; ``book`` is valid while ``synced``.

    Args:
        symbol: instrument, e.g. "ETHUSDT" (passed to ``snapshot_source``).
        rule: "spot" (``U``/``u`` chain), "futures" (``pu`` chain) or "snapshot" (whole books
            only); see the module docstring. ValueError for another.
        snapshot_source: called with ``symbol`` to fetch a fresh snapshot after a gap (a REST
            call live, ``ReplayVenue.snapshot`` in replay). Without it the synchronizer stays
            unsynced after a gap, buffering, until :meth:`apply_snapshot` is called.
        book: the (empty) book to keep, e.g. a :class:`~ml.market.gridbook.GridBook`; default
            a dict :class:`OrderBook`.

    A delta or snapshot whose levels the book refuses (``InvalidLevels``: NaN / non-positive /
    off-tick price, negative size) changes nothing, counts ``rejected`` and is handled as a gap
    (the book no longer matches the venue, so it resyncs from a snapshot).

    Deltas that arrive before the first snapshot are buffered; the first snapshot comes from
    the caller (the recorded snapshot in replay). On a gap (chain break, or a delta that leaves
    the book crossed: a crossed book is never published), it logs a warning with the expected
    and received ids, counts ``gaps``, marks the book unsynced, fetches a snapshot and replays
    the buffered deltas (the offending one included) under the same rule; ``resyncs`` counts
    snapshots loaded after a gap.

    After a resync from a venue-side snapshot whose ``lastUpdateId`` is exactly a previous
    delta's ``u`` (what ``ReplayVenue.snapshot`` returns), a futures delta continues it when
    ``pu == lastUpdateId``; this is the documented chain rule applied to the snapshot's id.
    """

    def __init__(self, symbol: str, rule: SyncRule = "spot",
                 snapshot_source: SnapshotSource | None = None,
                 book: OrderBook | GridBook | None = None) -> None:
        if rule not in SYNC_RULES:
            raise ValueError(f"rule must be 'spot' or 'futures' (or 'snapshot'), got {rule!r}")
        self.symbol = symbol
        self.rule = rule
        self.snapshot_source = snapshot_source
        self.book = book if book is not None else OrderBook()
        self.synced = False
        self.last_update_id: int | None = None  # of the snapshot or last applied delta
        self.last_gap: SequenceGap | None = None
        self.stats = SyncStats()
        self._buffer: deque[OrderBookDelta] = deque(maxlen=MAX_BUFFER)
        self._expect_first = True
        self._after_gap = False
        self._discard = False

    def apply_snapshot(self, snapshot: OrderBookSnapshot) -> None:
        """Load ``snapshot`` and replay the buffered deltas.

        A snapshot older than (or equal to) the synced book is ignored (logged at debug).
        Rule "snapshot": see :meth:`_replace`.
        """
        if self.rule == "snapshot":
            self._replace(snapshot)
            return
        if self.synced and self.last_update_id is not None \
                and snapshot.last_update_id <= self.last_update_id:
            logger.debug("%s: stale snapshot %d ignored (book at %d)", self.symbol,
                         snapshot.last_update_id, self.last_update_id)
            return
        self._load(snapshot)
        self._drain()

    def apply_delta(self, delta: OrderBookDelta) -> None:
        """Apply ``delta`` if it continues the chain, else buffer it / resync (class docstring).

        Raises ValueError under rule "snapshot" (such a venue sends whole books only).
        """
        if self.rule == "snapshot":
            raise ValueError(f"{self.symbol}: rule 'snapshot' takes snapshots only, got a delta u={delta.final_update_id}")
        self._buffer.append(delta)
        self._drain()

    def _replace(self, snapshot: OrderBookSnapshot) -> None:
        """Rule "snapshot": load ``snapshot`` unless it is stale (id not above the last one seen);
        a crossed or invalid one is rejected and leaves the book unsynced (module docstring)."""
        if self.last_update_id is not None and snapshot.last_update_id <= self.last_update_id:
            self.stats.stale_snapshots += 1
            logger.debug("%s: stale snapshot %d ignored (book at %d)", self.symbol, snapshot.last_update_id,
                         self.last_update_id)
            return
        self.last_update_id = snapshot.last_update_id
        try:
            self.book.apply_snapshot(snapshot)
        except InvalidLevels as exc:
            self.stats.rejected += 1
            self.synced = False
            logger.warning("%s: snapshot %d rejected: %s", self.symbol, snapshot.last_update_id, exc)
            return
        self.synced = not self.book.is_crossed()
        if not self.synced:
            self.stats.rejected += 1
            logger.warning("%s: snapshot %d is crossed; rejected", self.symbol, snapshot.last_update_id)
            return
        self.stats.snapshots += 1

    def _load(self, snapshot: OrderBookSnapshot) -> None:
        try:
            self.book.apply_snapshot(snapshot)
        except InvalidLevels as exc:
            self.stats.rejected += 1
            self.synced = False
            self._after_gap = True
            self.last_update_id = snapshot.last_update_id
            logger.warning("%s: snapshot %d rejected: %s", self.symbol, snapshot.last_update_id, exc)
            return
        self.last_update_id = snapshot.last_update_id
        self._expect_first = True
        self.stats.snapshots += 1
        if self._after_gap:
            self.stats.resyncs += 1
            self._after_gap = False
        self.synced = not self.book.is_crossed()
        if not self.synced:
            logger.warning("%s: snapshot %d is crossed; waiting for another", self.symbol,
                           snapshot.last_update_id)
            self._after_gap = True

    def _drain(self) -> None:
        attempts = 0
        while self._buffer and self.last_update_id is not None:
            if not self.synced:
                if self.snapshot_source is None or attempts >= MAX_RESYNC_ATTEMPTS:
                    return
                attempts += 1
                self._load(self.snapshot_source(self.symbol))
                continue
            delta = self._buffer.popleft()
            self._discard = False
            if not self._apply_checked(delta) and not self._discard:
                self._buffer.appendleft(delta)  # replayed against the next snapshot

    def _apply_checked(self, delta: OrderBookDelta) -> bool:
        """Apply one delta on a synced book; False (book marked unsynced) on a gap."""
        last = self.last_update_id
        u = delta.final_update_id
        # Futures keeps u == lastUpdateId (docs: drop only u < lastUpdateId) for the first delta.
        if u < last or (u == last and (self.rule == "spot" or not self._expect_first)):
            self.stats.deltas_dropped += 1
            return True
        reason = self._chain_break(delta, last)
        if reason:
            return self._gap(delta, reason)
        try:
            self.stats.level_updates += self.book.apply_levels(delta.bids, delta.asks)
        except InvalidLevels as exc:
            self.stats.rejected += 1
            logger.warning("%s: delta U=%d u=%d rejected: %s", self.symbol, delta.first_update_id,
                           delta.final_update_id, exc)
            self._discard = True  # replaying it against a new snapshot would fail again
            return self._gap(delta, "invalid levels")
        self.stats.deltas_applied += 1
        self.last_update_id = u
        self._expect_first = False
        if self.book.is_crossed():
            return self._gap(delta, "crossed book")
        return True

    def _chain_break(self, delta: OrderBookDelta, last: int) -> str:
        """Why ``delta`` does not continue ``last`` under the rule ('' if it does)."""
        first, pu = delta.first_update_id, delta.prev_final_update_id
        if self.rule == "spot":
            if self._expect_first:
                return "" if first <= last + 1 else "first delta U > lastUpdateId+1"
            return "" if first == last + 1 else "U != previous u+1"
        if pu == last:
            return ""
        if self._expect_first and first <= last <= delta.final_update_id:
            return ""
        return "first delta does not cover lastUpdateId" if self._expect_first \
            else "pu != previous u"

    def _gap(self, delta: OrderBookDelta, reason: str) -> bool:
        last = self.last_update_id
        if reason == "crossed book":
            expected = got = delta.final_update_id
        elif self.rule == "spot":
            expected, got = last + 1, delta.first_update_id
        else:
            expected = last
            got = delta.prev_final_update_id if delta.prev_final_update_id is not None else -1
        self.last_gap = SequenceGap(self.symbol, expected, got, reason)
        self.stats.gaps += 1
        self.synced = False
        self._after_gap = True
        logger.warning("%s: sequence gap (%s): expected %d, got %d (delta U=%d u=%d E=%d)",
                       self.symbol, reason, expected, got, delta.first_update_id,
                       delta.final_update_id, delta.ts_event)
        return False
