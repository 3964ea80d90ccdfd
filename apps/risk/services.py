"""Risk: limits from the database into the pure rules (``ml.risk``), the account's trading state
and kill switch, and the record of every rejection, state change, breaker and stop."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from apps.market.convert import datetime_to_ms, ms_to_datetime, to_decimal
from apps.market.models import Instrument
from apps.risk.models import RiskEvent, RiskLimit, RiskState
from apps.trading.models import Order, TradingAccount
from ml.risk.breakers import BreakerParams
from ml.risk.limits import AccountRisk, RiskLimits, check_order
from ml.risk.manager import DAY_MS, RiskManager
from ml.risk.stops import StopRules

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    approved: bool
    rule: str = ""
    reason: str = ""


def risk_limit_get_or_default(*, account: TradingAccount, instrument: Instrument) -> RiskLimit:
    """The account's limit for the instrument, created with the model defaults if missing."""
    limit, _ = RiskLimit.objects.get_or_create(account=account, instrument=instrument)
    return limit


def risk_limits_of(limit: RiskLimit) -> RiskLimits:
    """The pure limits (floats: base units, USD, fractions) of a RiskLimit row."""
    return RiskLimits(max_position=float(limit.max_position), max_order_notional=float(limit.max_order_notional),
                      max_orders_per_minute=limit.max_orders_per_minute, daily_loss_limit=float(limit.daily_loss_limit),
                      max_drawdown=limit.max_drawdown)


def risk_stops_of(limit: RiskLimit) -> StopRules:
    return StopRules(stop_loss=limit.stop_loss, take_profit=limit.take_profit, trailing=limit.trailing_stop)


def risk_breaker_of(limit: RiskLimit) -> BreakerParams:
    return BreakerParams(max_move=limit.breaker_max_move, max_errors=limit.breaker_max_errors,
                         cooldown_ms=limit.breaker_cooldown_seconds * 1000)


def risk_check_order(
    *, limit: RiskLimit, side: str, quantity: Decimal, price: Decimal, position: Decimal
) -> RiskVerdict:
    """Check one order against the static limits only (notional, max position), for a caller
    without a running RiskManager; rules and order in ``ml.risk.limits``. ``quantity`` base
    units (> 0), ``price`` expected fill (USD), ``position`` signed base units."""
    verdict = check_order(limits=risk_limits_of(limit), account=AccountRisk(position=float(position)), side=side,
                          quantity=float(quantity), price=float(price), now_ms=0)
    return RiskVerdict(verdict.approved, verdict.rule, verdict.reason)


def risk_event_record(*, account: TradingAccount, kind: str, rule: str, reason: str, ts_event_ms: int,
                      instrument: Instrument | None = None, order: Order | None = None,
                      new_order: bool = False) -> RiskEvent:
    """Store one risk event (idempotent per order and rule when ``order`` is given; ``new_order``:
    the order was created in this transaction, so it has no event yet and none is looked up)."""
    fields = {"account": account, "instrument": instrument, "kind": kind, "reason": reason[:255],
              "ts_event": ms_to_datetime(ts_event_ms)}
    if order is not None and not new_order:
        event, _ = RiskEvent.objects.get_or_create(order=order, rule=rule, defaults=fields)
        return event
    return RiskEvent.objects.create(rule=rule, order=order, **fields)


def risk_event_record_skip(*, account: TradingAccount, instrument: Instrument, rule: str, reason: str,
                           ts_event_ms: int) -> RiskEvent:
    """Store that the desk stood aside at ``ts_event_ms`` because ``rule`` left no room for an order
    (kind "skipped"); idempotent per account, instrument, rule and second, so a re-run of the same
    session adds nothing."""
    event, _ = RiskEvent.objects.get_or_create(
        account=account, instrument=instrument, kind=RiskEvent.Kind.SKIPPED, rule=rule[:32],
        ts_event=ms_to_datetime(ts_event_ms), defaults={"reason": reason[:255]})
    return event


def risk_event_record_rejection(*, order: Order, verdict, ts_event_ms: int, new_order: bool = False) -> RiskEvent:
    """Store why an order was rejected (idempotent per order and rule; ``new_order``: see
    :func:`risk_event_record`)."""
    logger.info("order %s rejected: %s", order.client_order_id, verdict.reason)
    return risk_event_record(account=order.account, instrument=order.instrument, order=order, kind=RiskEvent.Kind.REJECTED,
                             rule=verdict.rule, reason=verdict.reason, ts_event_ms=ts_event_ms, new_order=new_order)


def risk_state_get(*, account: TradingAccount) -> RiskState:
    state, _ = RiskState.objects.get_or_create(account=account)
    return state


@transaction.atomic
def risk_kill_switch_set(*, account: TradingAccount, on: bool, by: str = "") -> RiskState:
    """Turn the account's kill switch on or off. The engine reads it at the start of every decision
    cycle, so new orders stop at the next cycle; cancels and exits still pass. Stored as a RiskEvent."""
    state = RiskState.objects.select_for_update().get_or_create(account=account)[0]
    if state.kill_switch == on:
        return state
    state.kill_switch, state.kill_switch_by, state.kill_switch_at = on, by[:150], timezone.now()
    state.save(update_fields=["kill_switch", "kill_switch_by", "kill_switch_at", "updated_at"])
    risk_event_record(account=account, kind=RiskEvent.Kind.KILL_SWITCH, rule="kill_switch",
                      reason=f"kill switch {'on' if on else 'off'}{f' by {by}' if by else ''}",
                      ts_event_ms=datetime_to_ms(state.kill_switch_at))
    logger.warning("kill switch %s for account %s by %s", "on" if on else "off", account.pk, by or "?")
    return state


def risk_manager_start(*, account: TradingAccount, limit: RiskLimit, equity: float, start_ms: int) -> RiskManager:
    """A RiskManager for a session starting at ``start_ms``. The stored peak and day-start equity
    carry over only when the stored state is older than the session (time moves forward: a live
    restart), not when a replay goes back in time."""
    row = risk_state_get(account=account)
    carry = row.as_of is not None and datetime_to_ms(row.as_of) <= start_ms and row.peak_equity is not None
    return RiskManager(
        risk_limits_of(limit), equity=equity, breaker=risk_breaker_of(limit),
        peak_equity=float(row.peak_equity) if carry else None,
        day_start_equity=float(row.day_start_equity) if carry and row.day_start_equity is not None else None,
        day=datetime_to_ms(row.as_of) // DAY_MS if carry else None,
    )


def risk_state_save(*, row: RiskState, manager: RiskManager, ts_event_ms: int, metrics: dict | None = None) -> RiskState:
    """Write what the engine computed this cycle (state, reason, equity figures, metrics) on the row;
    the kill switch is the user's and is not touched."""
    row.state, row.reason = manager.state.value, manager.reason[:255]
    row.equity, row.peak_equity = to_decimal(manager.equity), to_decimal(manager.peak_equity)
    row.day_start_equity = to_decimal(manager.day_start_equity)
    row.as_of = ms_to_datetime(ts_event_ms)
    if metrics is not None:
        row.metrics = metrics
    RiskState.objects.filter(pk=row.pk).update(
        state=row.state, reason=row.reason, equity=row.equity, peak_equity=row.peak_equity,
        day_start_equity=row.day_start_equity, as_of=row.as_of, metrics=row.metrics, updated_at=timezone.now())
    return row
