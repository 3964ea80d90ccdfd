"""Pre-trade risk checks and the record of what they rejected."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from apps.market.convert import ms_to_datetime
from apps.market.models import Instrument
from apps.risk.models import RiskEvent, RiskLimit
from apps.trading.models import Order, TradingAccount

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


def risk_check_order(
    *, limit: RiskLimit, side: str, quantity: Decimal, price: Decimal, position: Decimal
) -> RiskVerdict:
    """Check one order against the account's limits.

    ``quantity`` in base units (> 0), ``price`` the expected fill price (USD), ``position`` the
    current signed position. Rules, in order: max order notional (USD), max |position| after the
    order (base units). Exits that bring |position| down always pass the position rule.
    """
    notional = quantity * price
    if notional > limit.max_order_notional:
        return RiskVerdict(False, "max_order_notional",
                           f"order notional {notional:.2f} USD > max {limit.max_order_notional:.2f} USD")
    after = position + (quantity if side == "BUY" else -quantity)
    if abs(after) > limit.max_position and abs(after) > abs(position):
        return RiskVerdict(False, "max_position",
                           f"position after order {after:.8f} exceeds max {limit.max_position:.8f}")
    return RiskVerdict(True)


def risk_event_record_rejection(*, order: Order, verdict: RiskVerdict, ts_event_ms: int) -> RiskEvent:
    """Store why an order was rejected (idempotent per order and rule)."""
    logger.info("order %s rejected: %s", order.client_order_id, verdict.reason)
    event, _ = RiskEvent.objects.get_or_create(
        order=order,
        rule=verdict.rule,
        defaults={
            "account": order.account,
            "instrument": order.instrument,
            "kind": RiskEvent.Kind.REJECTED,
            "reason": verdict.reason,
            "ts_event": ms_to_datetime(ts_event_ms),
        },
    )
    return event
