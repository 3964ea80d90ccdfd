"""Writes for trading: accounts, decisions, paper orders, fills and positions."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from apps.market.convert import ms_to_datetime, to_decimal
from apps.market.models import Instrument
from apps.predictions.models import Prediction
from apps.risk.services import risk_check_order, risk_event_record_rejection, risk_limit_get_or_default
from apps.trading.models import Decision, Fill, OrchestratorConfig, Order, Position, TradingAccount
from apps.trading.positions import PositionState
from ml.execution.paper import InsufficientLiquidity, walk_book
from ml.orchestrator import DecisionResult

logger = logging.getLogger(__name__)
LOT = Decimal("0.0001")  # ETHUSDT/BTCUSDT spot lot step is finer; 1e-4 base keeps orders readable


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What the orchestrator wants: side and USD notional at ``ts_event_ms`` for a decision."""

    account: TradingAccount
    instrument: Instrument
    side: str
    notional: Decimal
    ts_event_ms: int
    decision: Decision | None = None


def account_ensure_paper(*, owner: AbstractBaseUser, name: str = "paper") -> TradingAccount:
    """The user's paper account ``name``, created (with auto trading on) if missing."""
    account, _ = TradingAccount.objects.get_or_create(owner=owner, name=name)
    return account


def orchestrator_config_get(*, instrument: Instrument) -> OrchestratorConfig:
    config, _ = OrchestratorConfig.objects.get_or_create(instrument=instrument)
    return config


def decision_record(
    *, account: TradingAccount, instrument: Instrument, ts_event_ms: int, result: DecisionResult,
    prediction: Prediction | None,
) -> Decision:
    """Store the decision for (account, instrument, second); a re-run updates it in place."""
    decision, _ = Decision.objects.update_or_create(
        account=account,
        instrument=instrument,
        ts_event=ms_to_datetime(ts_event_ms),
        defaults={
            "action": result.action,
            "confidence": result.confidence,
            "threshold": result.threshold,
            "prediction": prediction,
            "reason": result.reason[:255],
        },
    )
    return decision


def position_as_of(*, account: TradingAccount, instrument: Instrument, before_ms: int) -> PositionState:
    """Rebuild the position from all fills strictly before ``before_ms`` (fills are the truth)."""
    state = PositionState()
    fills = (
        Fill.objects.filter(order__account=account, order__instrument=instrument, ts_event__lt=ms_to_datetime(before_ms))
        .select_related("order")
        .order_by("ts_event", "order_id", "seq")
    )
    for f in fills:
        state.apply_fill(side=f.order.side, quantity=f.quantity, price=f.price, fee=f.fee)
    return state


def position_save(*, account: TradingAccount, instrument: Instrument, state: PositionState) -> Position:
    position, _ = Position.objects.update_or_create(
        account=account,
        instrument=instrument,
        defaults={
            "quantity": state.quantity,
            "average_price": state.average_price.quantize(Decimal("0.00000001")),
            "realized_pnl": state.realized_pnl.quantize(Decimal("0.00000001")),
            "fees_paid": state.fees_paid.quantize(Decimal("0.00000001")),
        },
    )
    return position


def client_order_id_for(intent: OrderIntent) -> str:
    """Deterministic id: the same decision always maps to the same order (retries never double)."""
    return f"gogo-{intent.account.pk}-{intent.instrument.symbol}-{intent.ts_event_ms}-{intent.side}"


@transaction.atomic
def order_submit_paper(
    *, intent: OrderIntent, levels: Sequence[tuple[float, float]], state: PositionState
) -> Order:
    """Submit a market order to the paper venue: risk check, then fill by walking ``levels``.

    ``levels`` are the opposite side of the current book, best first (asks for BUY). ``state`` is
    the in-memory position and is updated with the fills. Idempotent on the client order id: a
    repeated submit returns the stored order and re-applies its stored fills to ``state``.
    Rejections (risk, no liquidity) are stored as REJECTED orders with the reason.
    """
    coid = client_order_id_for(intent)
    existing = Order.objects.filter(client_order_id=coid).first()
    if existing is not None:
        for f in existing.fills.all():
            state.apply_fill(side=existing.side, quantity=f.quantity, price=f.price, fee=f.fee)
        return existing
    if not levels:
        raise InsufficientLiquidity("empty book side")
    price = to_decimal(levels[0][0])
    quantity = (intent.notional / price).quantize(LOT, rounding=ROUND_DOWN)
    order = Order.objects.create(
        account=intent.account, instrument=intent.instrument, decision=intent.decision, client_order_id=coid,
        side=intent.side, quantity=quantity, ts_event=ms_to_datetime(intent.ts_event_ms),
    )
    limit = risk_limit_get_or_default(account=intent.account, instrument=intent.instrument)
    verdict = risk_check_order(limit=limit, side=intent.side, quantity=quantity, price=price, position=state.quantity)
    if not verdict.approved:
        return _reject(order, verdict, intent.ts_event_ms)
    try:
        fills = walk_book(levels, float(quantity), float(intent.account.fee_rate))
    except InsufficientLiquidity as exc:
        order.status, order.reject_reason = Order.Status.REJECTED, str(exc)[:255]
        order.save(update_fields=["status", "reject_reason"])
        return order
    _record_fills(order, fills, intent.ts_event_ms, state)
    return order


def _reject(order: Order, verdict, ts_event_ms: int) -> Order:
    order.status, order.reject_reason = Order.Status.REJECTED, verdict.reason[:255]
    order.save(update_fields=["status", "reject_reason"])
    risk_event_record_rejection(order=order, verdict=verdict, ts_event_ms=ts_event_ms)
    return order


def _record_fills(order: Order, fills, ts_event_ms: int, state: PositionState) -> None:
    ts = ms_to_datetime(ts_event_ms)
    rows = [
        Fill(order=order, seq=i, price=to_decimal(f.price), quantity=to_decimal(f.size), fee=to_decimal(f.fee), ts_event=ts)
        for i, f in enumerate(fills)
    ]
    Fill.objects.bulk_create(rows)
    for row in rows:
        state.apply_fill(side=order.side, quantity=row.quantity, price=row.price, fee=row.fee)
    filled = sum((r.quantity for r in rows), Decimal(0))
    order.filled_quantity = filled
    order.average_price = (sum((r.price * r.quantity for r in rows), Decimal(0)) / filled).quantize(Decimal("0.00000001"))
    order.status = Order.Status.FILLED
    order.save(update_fields=["filled_quantity", "average_price", "status"])
