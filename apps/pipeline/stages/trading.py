"""The trading step: the combined model output of a second through the trading desk
(``apps.trading.desk``: mixture of experts, risk cycle, stops, decision, execution) for every open
account. The desk's own rules stay in ``apps.trading``; this stage only calls its public methods."""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from apps.market.models import Instrument
from apps.pipeline.stages.counters import InstrumentCounters
from apps.pipeline.stages.market import MarketStep
from apps.predictions.models import Prediction
from apps.trading import services as trading_services
from apps.trading.desk import AccountDesk, TradingDesk
from apps.trading.models import OrchestratorConfig, TradingAccount
from ml.models.output import ModelOutput
from ml.orchestrator import MarketConditions, realized_volatility

logger = logging.getLogger(__name__)


class Trading:
    """The desk of one run and the accounts open on it.

    ``desk``: the TradingDesk (None until :meth:`open`); ``desks``: account id -> AccountDesk (an
    account's in-memory trading state); ``config``: the traded instrument's OrchestratorConfig."""

    def __init__(self, *, market: MarketStep, traded: Instrument, config: OrchestratorConfig,
                 accounts: list[TradingAccount], counters: InstrumentCounters) -> None:
        self.market, self.traded, self.config, self.counters = market, traded, config, counters
        self.accounts = accounts
        self.desk: TradingDesk | None = None
        self.desks: dict[int, AccountDesk] = {}

    def open(self, desk: TradingDesk, ts: int) -> None:
        """Use ``desk`` from second ``ts`` (ms) on and open every account on it at its stored position."""
        self.desk = desk
        for account in self.accounts:
            state = trading_services.position_as_of(account=account, instrument=self.traded, before_ms=ts)
            self.open_account(account, state, ts)

    def open_account(self, account: TradingAccount, position, ts: int) -> AccountDesk | None:
        """Open ``account`` (at ``position``, a ``PositionState``) on the desk from ``ts`` on; None
        when the desk refuses it (``TradingDesk.open_account``)."""
        desk = self.desk.open_account(account=account, position=position, start_ms=ts)
        if desk is not None:
            self.desks[account.pk] = desk
        return desk

    def conditions(self, book, mid: float | None, completeness: float | None) -> MarketConditions:
        """Spread (bps of mid) of the traded book, 1 s log-return volatility over the last minute, completeness."""
        spread = book.spread() if book is not None else None
        closes = [c.close for c in self.market.recent[self.traded.symbol]["1s"]]
        return MarketConditions(spread_bps=spread / mid * 1e4 if spread is not None and mid else None,
                                volatility=realized_volatility(closes), completeness=completeness)

    def decide(self, outputs: Mapping[str, ModelOutput], *, ts: int, mid: float | None, book,
               conditions: MarketConditions, trades: Sequence = (), prediction: Prediction | None = None,
               candles_1m: list | None = None, refresh_config: bool = True) -> tuple[ModelOutput, dict, list[dict]]:
        """The mixture of ``outputs`` at second ``ts`` (mid in USD), then one ``TradingDesk.trade``
        per open account on ``book`` with the second's ``trades``. ``refresh_config``: re-read the
        orchestrator settings first (live: admin edits apply at the next decision). Returns (the
        combined output, the gating, one decision payload per account)."""
        if refresh_config:
            self.config.refresh_from_db()
        output, gating = self.desk.mixture(outputs, ts, mid)
        if candles_1m is None:
            candles_1m = list(self.market.recent[self.traded.symbol]["1m"])
        decisions = [self.desk.trade(desk, output=output, gating=gating, prediction=prediction, ts=ts, book=book,
                                     conditions=conditions, candles_1m=candles_1m, trades=trades)
                     for desk in self.desks.values()]
        self.counters.decisions += len(decisions)
        return output, gating, decisions

    def close(self, ts: int) -> None:
        """End of the run at second ``ts``: the desk stores what it still holds (``TradingDesk.close``)."""
        if self.desk is not None:
            self.desk.close(now_ms=ts)
