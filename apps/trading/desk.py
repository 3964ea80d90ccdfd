"""The trading desk of a session: each exchange second, for every auto-trading account, run the
risk cycle, the stops, the orchestrator's decision and the execution of the resulting order.

Per second (``TradingDesk.mixture``), before any account: the net-edge scorer scores the calls
made one horizon ago against the mid and records this second's calls; the gate weights the
models by their measured net edge and the mixture's expected net edge per side is formed
(``ml.orchestrator``). Per account (``TradingDesk.trade``):

1. the execution client matches orders that reached the venue (paper latency) and fills move the position;
2. the risk manager starts its cycle: equity marked at mid, kill switch read from the database
   (so it halts new orders within this cycle), circuit breakers, trading state; a state change
   is stored as a RiskEvent;
3. a stop-loss / take-profit / trailing stop asks for a reduce-only market exit;
4. the orchestrator decides: BUY or SELL only when the mixture's net edge exceeds the margin (bps);
5. a BUY or SELL is sized (``RiskLimit.sizing``) and then sized down to what the risk manager will
   accept (``RiskManager.capacity``: position, notional, per-minute and state rules) and, on a spot
   instrument, to what the account holds (long-only: a SELL only closes a long; a BUY spends at
   most the cash), floored to the lot and the venue's minimum notional (``apps.trading.sizing``).
   When nothing is left the decision becomes a HOLD whose
   reason names the binding rule, and one RiskEvent (kind "skipped") is stored per rule until an
   order goes out again: no order the risk manager must reject is ever sent, so none is resent
   every cooldown;
6. the decision is stored with every input that produced it, then the order goes to the
   execution client.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from apps.market.convert import to_decimal
from apps.market.models import Instrument
from apps.predictions.models import Prediction
from apps.risk import services as risk_services
from apps.risk.models import RiskEvent, RiskLimit, RiskState
from apps.trading import services as trading_services
from apps.trading.execution import (
    BookView,
    CcxtExecutionClient,
    Execution,
    ExecutionClient,
    LiveTradingDisabled,
    PaperExecutionClient,
    VenueError,
)
from apps.trading.models import Decision, OrchestratorConfig, Order, TradingAccount
from apps.trading.positions import PositionState
from apps.trading.sizing import capacity, floor_lot, order_size
from ml.models.output import ModelOutput
from ml.orchestrator import (
    MIXTURE_NAME,
    EdgeStats,
    FilterParams,
    GatingParams,
    MarketConditions,
    NetEdgeScorer,
    decide,
    gating_weights,
    mixture_output,
)
from ml.risk.limits import Capacity
from ml.risk.manager import RiskManager
from ml.risk.stops import stop_hit, update_extreme

logger = logging.getLogger(__name__)


@dataclass
class AccountDesk:
    """One account's trading state during a session."""

    account: TradingAccount
    position: PositionState
    client: ExecutionClient
    limit: RiskLimit
    risk: RiskManager
    risk_row: RiskState
    last_order_ms: int | None = None
    extreme: float | None = None
    orders: int = 0
    fills: int = 0
    rejections: int = 0
    skips: int = 0  # times the desk stood aside because the limits left no room (RiskEvent "skipped")
    standing_aside: str | None = None  # the rule it stands aside for now (recorded once until an order goes out)
    equity_curve: list[float] = field(default_factory=list)


def client_for(account: TradingAccount, instrument: Instrument) -> ExecutionClient:
    """The account's execution client: paper, or ccxt for an enabled live account.
    Raises LiveTradingDisabled for a live account that may not trade."""
    if account.mode == TradingAccount.Mode.LIVE:
        return CcxtExecutionClient(account, instrument)
    return PaperExecutionClient(account, instrument)


def gating_params(config: OrchestratorConfig) -> GatingParams:
    return GatingParams(window=config.gating_window, min_scored=config.gating_min_scored, z=config.gating_z,
                        mode=config.gating_mode,
                        manual={str(k): float(v) for k, v in (config.manual_weights or {}).items()})


def _stats_row(st: EdgeStats | None) -> list | None:
    """[mean bps, standard error bps, scored calls] for the decision's inputs, rounded for reading."""
    return None if st is None else [round(st.mean_bps, 3), round(st.se_bps, 3), st.n]


class TradingDesk:
    """Trading of one instrument for several accounts in one session (module docstring)."""

    def __init__(self, *, instrument: Instrument, config: OrchestratorConfig) -> None:
        self.instrument, self.config = instrument, config
        self.scorer = NetEdgeScorer(horizon_ms=config.score_horizon_seconds * 1000, window=config.gating_window)
        self.desks: dict[int, AccountDesk] = {}

    def open_account(self, *, account: TradingAccount, position: PositionState, start_ms: int) -> AccountDesk | None:
        """Prepare an account at session start: its client (None and logged when a live account
        may not trade), reconciliation of its open orders, its risk manager."""
        try:
            client = client_for(account, self.instrument)
        except LiveTradingDisabled as exc:
            logger.warning("account %s skipped: %s", account.pk, exc)
            return None
        for done in client.reconcile(now_ms=start_ms):
            trading_services.fills_apply(state=position, order=done.order, fills=done.fills)
        limit = risk_services.risk_limit_get_or_default(account=account, instrument=self.instrument)
        equity = float(account.starting_balance + position.realized_pnl)
        risk = risk_services.risk_manager_start(account=account, limit=limit, equity=equity, start_ms=start_ms)
        desk = AccountDesk(account=account, position=position, client=client, limit=limit, risk=risk,
                           risk_row=risk_services.risk_state_get(account=account))
        self.desks[account.pk] = desk
        return desk

    def mixture(self, outputs: Mapping[str, ModelOutput], ts: int, mid: float | None) -> tuple[ModelOutput, dict]:
        """Score old calls, weight the models by measured net edge, combine; returns the mixture and
        the gating record {"mode", "weights", "why": {model: reason}, "scores": {model: [mean bps,
        SE bps, n] | None}, "accuracy": {model: [share of positive net scores | None, n]},
        "mixture_accuracy"}."""
        params = gating_params(self.config)
        if mid:
            self.scorer.observe(ts_ms=ts, price=mid)
        stats = {n: self.scorer.stats(n) for n in outputs}
        weights, how, why = gating_weights(outputs, stats, params)
        output = mixture_output(outputs, weights)
        if mid:
            calls = dict(outputs)
            if output.metadata["edge_bps"] is not None:  # the mixture calls only when some model has weight
                calls[MIXTURE_NAME] = output
            self.scorer.record(ts_ms=ts, price=mid, outputs=calls)
        gating = {"mode": how, "weights": weights, "why": why, "scores": {n: _stats_row(st) for n, st in stats.items()},
                  "accuracy": {n: [None if st is None else st.win_rate, 0 if st is None else st.n]
                               for n, st in stats.items()},
                  "mixture_accuracy": list(self.scorer.accuracy(MIXTURE_NAME))}
        return output, gating

    def trade(self, desk: AccountDesk, *, output: ModelOutput, gating: dict, prediction: Prediction | None, ts: int,
              book: BookView | None,
              conditions: MarketConditions, candles_1m: Sequence = (), trades: Sequence = ()) -> dict:
        """One decision cycle of one account (module docstring); returns the payload to publish:
        {"account", "action", "edge_bps", "margin_bps", "confidence" (= edge, 0 without), "threshold"
        (= margin), "reason", "order", "stop", "risk_state", "gating": {"mode", "weights", "why"}}.

        ``trades``: the traded instrument's prints since the previous cycle (ml.market.events.Trade,
        in order); a paper account's resting limit orders fill from them (queue position first)."""
        try:
            if isinstance(desk.client, PaperExecutionClient):
                for t in trades:
                    aggressor = "SELL" if t.is_buyer_maker else "BUY"
                    for done in desk.client.on_trade(now_ms=t.ts_event, price=t.price, size=t.size, aggressor=aggressor):
                        self._apply(desk, done)
            for done in desk.client.poll(now_ms=ts, book=book):
                self._apply(desk, done)
        except VenueError as exc:
            self._venue_error(desk, ts, exc)
        mid = book.mid() if book is not None else None
        price = float(mid) if mid else None
        self._risk_cycle(desk, ts, price)
        stop = self._stop(desk, ts, price, book)
        cfg = self.config
        result = decide(edge_bps=output.metadata.get("edge_bps"), margin_bps=cfg.margin_bps, now_ms=ts,
                        last_order_ms=desk.last_order_ms, cooldown_ms=cfg.cooldown_seconds * 1000,
                        conditions=conditions,
                        filters=FilterParams(cfg.max_spread_bps, cfg.max_volatility, cfg.min_completeness),
                        no_edge_reason=f"no model has weight ({gating.get('mode', '')}): "
                                       + "; ".join(gating.get("why", {}).values()))
        if not cfg.trading_enabled and result.action != "HOLD":
            result = result.held(f"trading stopped on {self.instrument.symbol} ({result.action} held)", "trading")
        quantity, purpose = Decimal(0), "entry"
        if result.action != "HOLD" and price is None:
            result = result.held(f"{result.action} held: no book to price the order", "risk")
        elif result.action != "HOLD":
            touch = book.best_ask() if result.action == "BUY" else book.best_bid()
            price = float(touch) if touch else price  # expected fill: the touch of the side we take
            quantity, purpose, binding = order_size(desk=desk, instrument=self.instrument, config=cfg,
                                                    scorer=self.scorer, side=result.action, price=price, ts=ts,
                                                    candles_1m=candles_1m)
            if quantity <= 0:
                self._stand_aside(desk, ts, result.action, binding)
                result = result.held(f"{result.action} stood aside: {binding.rule}: {binding.reason}", "risk")
        inputs = self._inputs(desk, output, gating, conditions)
        decision = self._decision_record(desk, ts=ts, result=result, prediction=prediction, inputs=inputs)
        payload = {"account": desk.account.pk, "action": result.action, "edge_bps": result.edge_bps,
                   "margin_bps": result.margin_bps, "confidence": result.confidence, "threshold": result.threshold,
                   "reason": result.reason, "order": None, "stop": stop, "risk_state": desk.risk.state.value,
                   "gating": {k: gating.get(k) for k in ("mode", "weights", "why")}}
        if result.action == "HOLD":
            return payload
        intent = trading_services.OrderIntent(account=desk.account, instrument=self.instrument, side=result.action,
                                              notional=cfg.order_notional, ts_event_ms=ts, decision=decision,
                                              quantity=quantity, purpose=purpose)
        order = self._send(desk, intent, ts, price, book)
        if order is not None:
            payload["order"] = {"side": order.side, "quantity": str(order.quantity), "status": order.status,
                                "price": str(order.average_price or ""), "reason": order.reject_reason}
        return payload

    def _inputs(self, desk: AccountDesk, output: ModelOutput, gating: dict, conditions: MarketConditions) -> dict:
        """What a decision is stored with: each model's probabilities and edge, the gating record, the
        mixture's probabilities and edge, the market conditions, the settings and the risk state."""
        cfg = self.config
        return {"models": output.metadata.get("probs", {}), "edges": output.metadata.get("edges", {}),
                "gating": gating, "mixture": dict(output.probs), "edge_bps": output.metadata.get("edge_bps"),
                "conditions": {"spread_bps": conditions.spread_bps, "volatility": conditions.volatility,
                               "completeness": conditions.completeness},
                "settings": {"margin_bps": cfg.margin_bps, "cooldown_seconds": cfg.cooldown_seconds,
                             "max_spread_bps": cfg.max_spread_bps, "max_volatility": cfg.max_volatility,
                             "min_completeness": cfg.min_completeness, "trading_enabled": cfg.trading_enabled,
                             "gating_mode": cfg.gating_mode},
                "risk": {"state": desk.risk.state.value, "position": float(desk.position.quantity),
                         "equity": round(desk.risk.equity, 2)}}

    def close(self, *, now_ms: int) -> None:
        """End of the session: paper MARKET orders still on their way expire (a restart would
        expire them too, see ``PaperExecutionClient.reconcile``); resting limits stay open for the
        next session's reconciliation. The risk figures and metrics are stored."""
        from ml.risk.metrics import summary

        for desk in self.desks.values():
            if isinstance(desk.client, PaperExecutionClient):
                for paper in desk.client.matcher.open_orders():
                    if paper.order_type == "MARKET":
                        order = Order.objects.get(client_order_id=paper.client_order_id)
                        trading_services.order_transition(order=order, status=Order.Status.EXPIRED, ts_event_ms=now_ms,
                                                          detail="session ended before the order reached the venue")
                        paper.status = "EXPIRED"
            metrics = summary(desk.equity_curve, 1.0) if len(desk.equity_curve) >= 2 else {}
            risk_services.risk_state_save(row=desk.risk_row, manager=desk.risk, ts_event_ms=now_ms, metrics=metrics)

    def _risk_cycle(self, desk: AccountDesk, ts: int, price: float | None) -> None:
        p = desk.position
        equity = float(desk.account.starting_balance + p.realized_pnl + (p.unrealized_pnl(to_decimal(price)) if price else 0))
        desk.equity_curve.append(equity)
        desk.risk_row.kill_switch = self._kill_switch(desk)
        exposure = float(p.quantity) + desk.client.open_exposure()
        change = desk.risk.cycle(now_ms=ts, equity=equity, position=exposure, price=price, kill_switch=desk.risk_row.kill_switch)
        if change is not None:
            kind = RiskEvent.Kind.BREAKER if change.reason.startswith("circuit breaker") else RiskEvent.Kind.STATE
            risk_services.risk_event_record(account=desk.account, instrument=self.instrument, kind=kind,
                                            rule=change.after.value.lower(), ts_event_ms=ts,
                                            reason=f"{change.before.value} -> {change.after.value}: {change.reason}")
        if change is not None or ts // 1000 % 10 == 0:  # the dashboard's figures, every 10 s
            self._risk_state_save(desk, ts)

    # Storage hooks: the backtest's fast path (apps.backtest.fast.BacktestDesk) overrides these to
    # buffer its writes; the live desk reads and writes the database every cycle.
    def _decision_record(self, desk: AccountDesk, *, ts: int, result, prediction: Prediction | None,
                         inputs: dict) -> Decision:
        return trading_services.decision_record(account=desk.account, instrument=self.instrument, ts_event_ms=ts,
                                                result=result, prediction=prediction, inputs=inputs)

    def _kill_switch(self, desk: AccountDesk) -> bool:
        """The account's kill switch as stored now (so a switch thrown in the admin halts this cycle)."""
        kill = RiskState.objects.filter(pk=desk.risk_row.pk).values_list("kill_switch", flat=True).first()
        return bool(kill)

    def _risk_state_save(self, desk: AccountDesk, ts: int) -> None:
        risk_services.risk_state_save(row=desk.risk_row, manager=desk.risk, ts_event_ms=ts)

    def _stop(self, desk: AccountDesk, ts: int, price: float | None, book: BookView | None) -> str | None:
        qty = float(desk.position.quantity)
        desk.extreme = update_extreme(qty, desk.extreme, price) if price else desk.extreme
        if not price or qty == 0:
            return None
        rule = stop_hit(position=qty, entry=float(desk.position.average_price), extreme=desk.extreme, price=price,
                        rules=risk_services.risk_stops_of(desk.limit))
        if rule is None:
            return None
        side = "SELL" if qty > 0 else "BUY"
        cap = float(desk.limit.max_order_notional) / price
        intent = trading_services.OrderIntent(account=desk.account, instrument=self.instrument, side=side,
                                              notional=Decimal(0), ts_event_ms=ts, purpose=rule,
                                              quantity=Decimal(str(min(abs(qty), cap))))
        entry = float(desk.position.average_price)
        risk_services.risk_event_record(account=desk.account, instrument=self.instrument, kind=RiskEvent.Kind.STOP,
                                        rule=rule, ts_event_ms=ts, reason=f"{rule} at {price:.2f}, entry {entry:.2f}")
        self._send(desk, intent, ts, price, book)
        return rule

    def _stand_aside(self, desk: AccountDesk, ts: int, side: str, binding: Capacity) -> None:
        """Record once (a RiskEvent "skipped") that the limits leave no room for an order; the same
        rule is not recorded again until an order goes out."""
        if desk.standing_aside == binding.rule:
            return
        desk.standing_aside = binding.rule
        desk.skips += 1
        risk_services.risk_event_record_skip(account=desk.account, instrument=self.instrument, rule=binding.rule,
                                             ts_event_ms=ts, reason=f"{side} stood aside: {binding.reason or binding.rule}")

    def _send(self, desk: AccountDesk, intent: trading_services.OrderIntent, ts: int, price: float,
              book: BookView | None) -> Order | None:
        quantity = trading_services.order_quantity(intent=intent, price=to_decimal(price))
        room = capacity(desk=desk, instrument=self.instrument, side=intent.side, price=price, ts=ts)
        if quantity > 0 and float(quantity) > room.quantity:  # a stop, or a size the caller did not cut
            quantity = floor_lot(room.quantity)
            if quantity <= 0:
                self._stand_aside(desk, ts, intent.side, room)
        if quantity <= 0:
            return None
        desk.standing_aside = None
        # The risk verdict comes first (it changes nothing), so a rejected order is stored REJECTED
        # at once: its NEW and REJECTED events in one insert, its risk event without a lookup. The
        # size is within the capacity, so a rejection here means the two disagree (a bug).
        verdict = desk.risk.verdict(side=intent.side, quantity=float(quantity), price=price, now_ms=ts)
        order, created = trading_services.order_create(intent=intent, quantity=quantity,
                                                       reject_reason=None if verdict.approved else verdict.reason)
        desk.last_order_ms = ts
        desk.orders += 1
        if not created:  # a re-run of the same second: the stored order stands (never sent twice)
            if order.status != Order.Status.REJECTED:
                desk.risk.record_order(ts)
                trading_services.fills_apply(state=desk.position, order=order, fills=order.fills.all())
                desk.fills += order.fills.count()
            desk.rejections += order.status == Order.Status.REJECTED
            return order
        if not verdict.approved:
            logger.error("order %s rejected within its capacity: %s", order.client_order_id, verdict.reason)
            risk_services.risk_event_record_rejection(order=order, verdict=verdict, ts_event_ms=ts, new_order=True)
            desk.rejections += 1
            return order
        desk.risk.accept(side=order.side, quantity=float(order.quantity), now_ms=ts)
        try:
            self._apply(desk, desk.client.submit(order, now_ms=ts, book=book))
        except VenueError as exc:  # the order stays NEW; poll / reconcile settle it later
            self._venue_error(desk, ts, exc)
        return order

    def _venue_error(self, desk: AccountDesk, ts: int, exc: Exception) -> None:
        """Count a venue error toward the circuit breaker (it halts new orders when it trips)."""
        logger.warning("venue error for account %s: %s", desk.account.pk, exc)
        tripped = desk.risk.venue_error(ts, type(exc).__name__)
        if tripped:
            risk_services.risk_event_record(account=desk.account, instrument=self.instrument, kind=RiskEvent.Kind.BREAKER,
                                            rule="venue_errors", reason=tripped, ts_event_ms=ts)

    def _apply(self, desk: AccountDesk, done: Execution) -> None:
        if done.fills:
            trading_services.fills_apply(state=desk.position, order=done.order, fills=done.fills)
            desk.fills += len(done.fills)
            trading_services.position_save(account=desk.account, instrument=self.instrument, state=desk.position)
        if done.order.status == Order.Status.REJECTED and done.order.reject_reason:
            desk.rejections += 1
