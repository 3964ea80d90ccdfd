"""Where the engine's writes go: the storage interface and its two implementations.

- :class:`DatabaseStorage` (live, replay, per-second backtest): the market rows of every
  ``flush_every`` seconds in one transaction (idempotent upserts, COB frames by COPY); the desk
  writes its decisions, orders and risk state as it goes (``apps.trading.desk.TradingDesk``).
- :class:`BufferedStorage` (the fast backtest, ``apps.backtest.fast``): no market rows (the candle
  and COB tables already hold the recorded session); the desk's decisions are buffered and
  inserted with one COPY per :meth:`~BufferedStorage.flush` (:class:`BufferedDesk`). Orders, fills,
  order events, risk events and positions are still written as they happen (one per cooldown at most).

The desk's storage hooks (``_decision_record``, ``_kill_switch``, ``_risk_state_save``) are the
trading app's extension points; :class:`BufferedDesk` overrides them and nothing else reads them.
"""
from __future__ import annotations

import json
import logging
from typing import Protocol

from django.db import connection, transaction

from apps.market import services as market_services
from apps.market.convert import ms_to_datetime
from apps.market.models import Instrument
from apps.pipeline.stages.market import MarketRows
from apps.trading.desk import AccountDesk, TradingDesk
from apps.trading.execution import PaperExecutionClient
from apps.trading.models import Decision, OrchestratorConfig

logger = logging.getLogger(__name__)

ID_POOL = 1024  # decision ids drawn from the sequence per query


class Storage(Protocol):
    """What the engine needs of its storage."""

    def desk(self, *, instrument: Instrument, config: OrchestratorConfig) -> TradingDesk:
        """The trading desk that writes through this storage."""
        ...

    def market_rows(self, rows: MarketRows) -> None:
        """Take one second's candles and COB frames (stored by the next due :meth:`flush` at the latest)."""
        ...

    def second_closed(self, ts: int) -> None:
        """Second ``ts`` (ms) went through the market step: flush when a flush is due."""
        ...

    def flush(self) -> None:
        """Write everything buffered; must run before the caller's transaction commits."""
        ...


class DatabaseStorage:
    """Market rows buffered for ``flush_every`` seconds (1: every second; workers mode needs 1, the
    inference workers read the second's rows), then written in one transaction."""

    def __init__(self, *, instruments: dict[str, Instrument], flush_every: int = 1) -> None:
        self.instruments, self.flush_every = instruments, max(1, flush_every)
        self.rows = MarketRows()

    def desk(self, *, instrument: Instrument, config: OrchestratorConfig) -> TradingDesk:
        return TradingDesk(instrument=instrument, config=config)

    def market_rows(self, rows: MarketRows) -> None:
        for symbol, candles in rows.candles.items():
            self.rows.candles.setdefault(symbol, []).extend(candles)
        for symbol, frames in rows.frames.items():
            self.rows.frames.setdefault(symbol, []).extend(frames)

    def second_closed(self, ts: int) -> None:
        if (ts // 1000) % self.flush_every == 0:
            self.flush()

    def flush(self) -> None:
        """Write buffered candles and frames (idempotent upserts) in one transaction."""
        with transaction.atomic():
            for symbol, candles in self.rows.candles.items():
                market_services.candle_upsert_many(instrument=self.instruments[symbol], candles=candles)
            for symbol, frames in self.rows.frames.items():
                market_services.cob_frame_copy_many(instrument=self.instruments[symbol], frames=frames)
        self.rows = MarketRows()


class BufferedStorage:
    """The fast backtest's storage (module docstring). The caller flushes inside its transaction."""

    def __init__(self) -> None:
        self.buffered_desk: BufferedDesk | None = None

    def desk(self, *, instrument: Instrument, config: OrchestratorConfig) -> TradingDesk:
        self.buffered_desk = BufferedDesk(instrument=instrument, config=config)
        return self.buffered_desk

    def market_rows(self, rows: MarketRows) -> None:
        """Dropped: a backtest stores no market data."""

    def second_closed(self, ts: int) -> None:
        """Nothing is due per second: the driver flushes per chunk."""

    def flush(self) -> None:
        if self.buffered_desk is not None:
            self.buffered_desk.flush()


class BufferedDesk(TradingDesk):
    """The trading desk with buffered decisions: one COPY per flush (:func:`decisions_copy`; their
    keys are drawn ahead, so an order references its decision before the insert and the foreign
    key is checked at commit), the kill switch read from memory (a backtest account is never
    switched from outside), and the risk state stored once, at :meth:`close`."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pending: list[Decision] = []
        self.ids: list[int] = []  # decision ids drawn ahead (decision_ids_draw)

    def _decision_record(self, desk: AccountDesk, *, ts: int, result, prediction, inputs: dict) -> Decision:
        """The decision, buffered with its primary key already drawn from the table's sequence, so
        that an order can reference it before it is inserted: the foreign key is checked at commit
        (Django creates it DEFERRABLE INITIALLY DEFERRED) and ``flush`` runs before the chunk's
        transaction commits."""
        decision = Decision(account=desk.account, instrument=self.instrument, ts_event=ms_to_datetime(ts),
                            action=result.action, confidence=result.confidence, threshold=result.threshold,
                            prediction=prediction, reason=result.reason[:255], filter=result.filter,
                            inputs=inputs or {})
        decision.pk = decision_ids_draw(self.ids, 1)[0]
        self.pending.append(decision)
        return decision

    def trade(self, desk: AccountDesk, *, trades=(), **kwargs) -> dict:
        """``TradingDesk.trade``; the second's prints are not handed to a paper client without open
        orders (``PaperMatcher.on_trade`` only fills resting orders: ~25 calls a second for nothing)."""
        if trades and isinstance(desk.client, PaperExecutionClient) and not desk.client.matcher.open_orders():
            trades = ()
        return super().trade(desk, trades=trades, **kwargs)

    def _kill_switch(self, desk: AccountDesk) -> bool:
        return desk.risk_row.kill_switch

    def _risk_state_save(self, desk: AccountDesk, ts: int) -> None:
        """Stored once by ``close``."""

    def flush(self) -> None:
        """Insert the buffered decisions (one COPY); called before the chunk's transaction commits."""
        if self.pending:
            decisions_copy(self.pending, self.ids)
            self.pending = []

    def _send(self, desk: AccountDesk, intent, ts: int, price: float, book):
        if intent.decision is not None and intent.decision.pk is None:
            self.flush()  # SQLite: no key drawn ahead, the order's decision is inserted first
        return super()._send(desk, intent, ts, price, book)

    def close(self, *, now_ms: int) -> None:
        self.flush()
        super().close(now_ms=now_ms)


_DECISION_COLUMNS = ("id", "account_id", "instrument_id", "ts_event", "action", "confidence", "threshold",
                     "prediction_id", "reason", "filter", "inputs")


def decision_ids_draw(ids: list[int], n: int) -> list[int]:
    """``n`` primary keys for new decisions, taken from the front of ``ids`` (a pool drawn earlier
    from the table's id sequence with ``nextval``, as an insert draws them), topped up by one query
    of at least ID_POOL ids when short. Unused ids are gaps in the sequence, as a rolled-back insert
    leaves. On SQLite (the embedded default) there is no sequence: the keys are left to the insert
    (``[None] * n``)."""
    if connection.vendor != "postgresql":
        return [None] * n
    if len(ids) < n:
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                           [Decision._meta.db_table, max(ID_POOL, n - len(ids))])
            ids.extend(row[0] for row in cursor.fetchall())
    mine = ids[:n]
    del ids[:n]
    return mine


def decisions_copy(decisions: list[Decision], ids: list[int] | None = None) -> None:
    """Insert unsaved ``decisions`` with one ``COPY ... FROM STDIN`` and set their primary keys.

    COPY returns no keys, so a decision without one gets it first from ``ids``
    (:func:`decision_ids_draw`). ~10x cheaper than ``bulk_create``, whose client-side quoting of
    the ``inputs`` JSON dominated the backtest's writes. Same rows: ``inputs`` goes in as JSON text
    (Postgres stores jsonb canonically, so key order and spacing do not matter). One statement, so
    all or none are stored; raises django.db.IntegrityError (a decision already stored for the same
    account, instrument and second) like ``bulk_create``. On SQLite (the embedded default) it is
    ``bulk_create``."""
    if connection.vendor != "postgresql":  # the embedded default (SQLite): no COPY; bulk_create sets the keys
        Decision.objects.bulk_create(decisions)
        return
    ids = ids if ids is not None else []
    missing = [d for d in decisions if d.pk is None]
    for d, pk in zip(missing, decision_ids_draw(ids, len(missing)), strict=True):
        d.pk = pk
    table = Decision._meta.db_table
    columns = ", ".join(_DECISION_COLUMNS)
    with connection.cursor() as cursor, connection.wrap_database_errors, \
            cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # noqa: S608 - our own names
        for d in decisions:
            copy.write_row((d.pk, d.account_id, d.instrument_id, d.ts_event, d.action, d.confidence, d.threshold,
                            d.prediction_id, d.reason, d.filter, json.dumps(d.inputs)))
    for d in decisions:
        d._state.adding, d._state.db = False, "default"
