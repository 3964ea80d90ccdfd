"""The main job, one exchange second at a time: market step -> BaseDataInput -> every enabled model
(CNN, DQN, transformer) -> trading desk (mixture of experts, risk, paper fills) -> storage, and one
update per second to publish. The stages live in ``apps.pipeline.stages``; this module composes them.

The same engine runs behind the live streams (``apps.pipeline.streams``), the headless ``replay``
command, the Celery ``ingest`` worker, the embedded web server (``apps.pipeline.runner``) and both
backtest paths (``apps.backtest``); only the driver differs. Drivers use the public attributes and
methods below, never an underscore name (tests/apps/pipeline/test_public_api.py).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from django.db import transaction

from apps.market.models import Instrument
from apps.pipeline.stages.counters import InstrumentCounters
from apps.pipeline.stages.dashboard import Dashboard, predicted_payload, skipped_payload
from apps.pipeline.stages.inference import Inference
from apps.pipeline.stages.inputs import InputBuilder
from apps.pipeline.stages.market import MarketStep
from apps.pipeline.stages.storage import DatabaseStorage, Storage
from apps.pipeline.stages.trading import Trading
from apps.predictions import services as prediction_services
from apps.trading import services as trading_services
from apps.trading.models import TradingAccount
from ml.market.replay import ReplayVenue
from ml.market.session import SecondResult

logger = logging.getLogger(__name__)


class Engine:
    """One session over recorded streams or a live venue.

    Give either ``recordings`` (symbol -> ordered files of one stream; a replay) or ``venue`` (an
    ``apps.market.venues.live.LiveVenue``: its symbols, venue and sync rule are used; the session
    runs until the venue is closed). ``replay_venue``: an already loaded ``ReplayVenue`` over exactly
    ``recordings``. ``accounts``: the accounts to trade (default: every auto-trading account).
    ``flush_every``: seconds of market rows per database write. Raises ValueError when both or
    neither are given, when a symbol is not a configured, enabled Instrument, or when no traded
    instrument is among them.

    Stages (public): ``market`` (:class:`MarketStep`), ``input_builder`` (:class:`InputBuilder`),
    ``inference`` (:class:`Inference`), ``trading`` (:class:`Trading`), ``storage``
    (:class:`~apps.pipeline.stages.storage.Storage`), ``dashboard`` (:class:`Dashboard`). State:
    ``first_ts`` / ``last_ts`` (ms, None before the first second), ``last_mid`` (USD), ``counters``.
    """

    def __init__(self, *, recordings: dict[str, list[Path]] | None = None, venue=None, sync_rule: str = "spot",
                 drop_deltas: dict[str, set[int]] | None = None, accounts: list[TradingAccount] | None = None,
                 flush_every: int = 1, store_inputs: bool = True, replay_venue: ReplayVenue | None = None) -> None:
        if (recordings is None) == (venue is None):
            raise ValueError("give either recordings= (replay) or venue= (live)")
        if venue is not None:
            sync_rule, venue_name, symbols = venue.sync_rule, venue.venue, list(venue.symbols)
        else:  # a backtest may hand over the recordings already parsed (ml.backtest.replay_cache)
            venue_name = Instrument.Venue.BINANCE_USDM if sync_rule == "futures" else Instrument.Venue.BINANCE
            symbols = list(recordings)
            venue = replay_venue or ReplayVenue(recordings, drop_deltas=drop_deltas)
        self.instruments = instruments_enabled(symbols, venue_name)
        self.traded = next(i for i in self.instruments.values() if i.is_traded)
        self.reference = next((i for i in self.instruments.values() if not i.is_traded), self.traded)
        self.counters = {s: InstrumentCounters() for s in self.instruments}
        traded_counters = self.counters[self.traded.symbol]
        self.market = MarketStep(venue=venue, instruments=self.instruments, sync_rule=sync_rule, counters=self.counters)
        self.input_builder = InputBuilder(market=self.market, traded=self.traded, reference=self.reference,
                                          counters=traded_counters)
        self.inference = Inference(traded=self.traded, reference=self.reference, counters=traded_counters,
                                   store_inputs=store_inputs)
        accounts = accounts if accounts is not None else list(TradingAccount.objects.filter(auto_trade=True))
        self.trading = Trading(market=self.market, traded=self.traded, accounts=accounts, counters=traded_counters,
                               config=trading_services.orchestrator_config_get(instrument=self.traded))
        # Workers mode: the inference workers read this second's candles and frames from the database.
        self.storage: Storage = DatabaseStorage(instruments=self.instruments,
                                                flush_every=1 if self.inference.in_worker else flush_every)
        self.dashboard = Dashboard(market=self.market, trading=self.trading, traded=self.traded, counters=self.counters)
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.last_mid: float | None = None

    # The session (the second source) and the input hook may be replaced before the first second.
    session = property(lambda self: self.market.session, lambda self, s: setattr(self.market, "session", s))
    input_hook = property(lambda self: self.input_builder.hook, lambda self, h: setattr(self.input_builder, "hook", h))
    rings = property(lambda self: self.market.rings, doc="symbol -> timeframe -> CandleRing (MarketStep)")
    recent = property(lambda self: self.market.recent, doc="symbol -> timeframe -> last 60 candles (MarketStep)")
    frame_rings = property(lambda self: self.market.frame_rings, doc="symbol -> FrameRing (MarketStep)")
    desk = property(lambda self: self.trading.desk, doc="the TradingDesk (None before the first second)")
    desks = property(lambda self: self.trading.desks, doc="account id -> AccountDesk")

    @property
    def started(self) -> bool:
        return self.first_ts is not None

    def use_storage(self, storage: Storage) -> None:
        """Write through ``storage`` instead of the database storage; only before the first second.
        Raises RuntimeError once the session has started (its desk writes through the old one)."""
        if self.started:
            raise RuntimeError("the storage can only be changed before the first second")
        self.storage = storage

    def run(self) -> Iterator[dict]:
        """Process every exchange second of the session; yields one update dict per second."""
        for second in self.session.seconds():
            if not self.started:
                self.start(second.ts)
            update = self.step(second)
            self.last_ts = second.ts
            yield update
        self.finish()

    def start(self, ts: int) -> None:
        """First second ``ts`` (ms): fill the rings, open the desk and the accounts."""
        self.first_ts = ts
        self.market.start(ts)
        self.trading.open(self.storage.desk(instrument=self.traded, config=self.trading.config), ts)

    def step(self, second: SecondResult) -> dict:
        """Process one closed exchange second (module docstring); returns the update to publish."""
        self.market_step(second)
        with transaction.atomic():
            trading = self.infer_and_trade(second)
        mid = second.books[self.traded.symbol].mid() if self.traded.symbol in second.books else None
        self.last_mid = mid or self.last_mid
        return self.dashboard.tick(second, trading, mid)

    def market_step(self, second, sequence_gaps: dict[str, int] | None = None) -> None:
        """The market step of ``second`` (``SecondResult`` or ``TapeSecond``) with its rows handed to
        the storage. ``sequence_gaps``: symbol -> synchronizer gaps so far (None: from the session)."""
        self.storage.market_rows(self.market.apply(second))
        self.market.record_sequence_gaps(second.ts, sequence_gaps)
        self.storage.second_closed(second.ts)

    def infer_and_trade(self, second: SecondResult) -> dict:
        """Input, inference and the desk for ``second``: {"prediction", "completeness", "decisions"}."""
        inputs = self.input_builder.build(second.ts, last_outputs=dict(self.inference.last_outputs))
        completeness = self.input_builder.completeness(inputs)
        result = self.inference.run(second.ts, inputs)
        if not result.outputs:
            return skipped_payload(result, completeness)
        prediction = result.rows.get(prediction_services.CNN_NAME) or next(iter(result.rows.values()), None)
        book = second.books.get(self.traded.symbol)
        mid = book.mid() if book is not None else None
        conditions = self.trading.conditions(book, mid, completeness["overall"])
        output, gating, decisions = self.trading.decide(
            result.outputs, ts=second.ts, mid=mid, book=book, conditions=conditions, prediction=prediction,
            trades=second.trades.get(self.traded.symbol, ()))
        return predicted_payload(result, output, gating, completeness, decisions)

    def finish(self) -> None:
        """End of the session: write what is buffered, let the desk store what it holds."""
        self.flush()
        if self.last_ts is not None:
            self.trading.close(self.last_ts)

    def flush(self) -> None:
        """Write everything the storage buffers (market rows, buffered decisions)."""
        self.storage.flush()

    def summary(self) -> dict:
        """Counts of this run per instrument and per account (``Dashboard.summary``)."""
        return self.dashboard.summary(first_ts=self.first_ts, last_ts=self.last_ts, mid=self.last_mid)


def instruments_enabled(symbols: list[str], venue: str) -> dict[str, Instrument]:
    """symbol -> the enabled Instrument of ``venue``. Raises ValueError naming the symbols without
    one, or when none of them is marked as traded."""
    rows = Instrument.objects.filter(venue=venue, symbol__in=list(symbols), enabled=True)
    found = {i.symbol: i for i in rows}
    missing = sorted(set(symbols) - set(found))
    if missing:
        raise ValueError(f"no enabled {venue} instrument configured for {', '.join(missing)}")
    if not any(i.is_traded for i in found.values()):
        raise ValueError("none of the replayed instruments is marked as traded")
    return found
