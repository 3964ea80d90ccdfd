"""Writes for trading: accounts, orchestrator settings, decisions, the order lifecycle, fills and
positions. Execution clients (``apps.trading.execution``) call the order services; the engine
calls the rest."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max

from apps.market.convert import ms_to_datetime, to_decimal
from apps.market.models import Instrument
from apps.predictions.models import Prediction
from apps.trading.models import Decision, Fill, OrchestratorConfig, Order, OrderEvent, Position, TradingAccount
from apps.trading.positions import PositionState
from apps.trading.secrets import secret_encrypt
from ml.execution.paper import PaperFill
from ml.orchestrator import DecisionResult

logger = logging.getLogger(__name__)
LOT = Decimal("0.0001")  # ETHUSDT/BTCUSDT spot lot step is finer; 1e-4 base keeps orders readable
PLACES = Decimal("0.00000001")
FINAL = (Order.Status.FILLED, Order.Status.CANCELED, Order.Status.REJECTED, Order.Status.EXPIRED)
PURPOSE_CODE = {"entry": "E", "exit": "X", "stop_loss": "L", "take_profit": "P", "trailing_stop": "T", "manual": "M"}
# Order configuration a user may change live (the dashboard form and the admin).
CONFIG_FIELDS = ("margin_bps", "cooldown_seconds", "order_notional", "max_spread_bps",
                 "max_volatility", "min_completeness", "gating_mode", "manual_weights", "trading_enabled")


class OrderStateError(ValueError):
    """A transition that the order lifecycle does not allow (e.g. FILLED -> CANCELED)."""


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What the orchestrator (or a stop, or a user) wants: side and size at ``ts_event_ms``.

    ``quantity`` in base units; when None it is ``notional`` (USD) / the expected price, floored
    to the lot. ``price`` is the limit price for LIMIT orders (USD). ``purpose`` is entry | exit |
    stop_loss | take_profit | trailing_stop | manual and goes into the client order id."""

    account: TradingAccount
    instrument: Instrument
    side: str
    notional: Decimal
    ts_event_ms: int
    decision: Decision | None = None
    quantity: Decimal | None = None
    order_type: str = "MARKET"
    price: Decimal | None = None
    purpose: str = "entry"


def account_ensure_paper(*, owner: AbstractBaseUser, name: str = "paper") -> TradingAccount:
    """The user's paper account ``name``, created (with auto trading on) if missing."""
    account, _ = TradingAccount.objects.get_or_create(owner=owner, name=name)
    return account


def account_set_credentials(*, account: TradingAccount, api_key: str, api_secret: str) -> TradingAccount:
    """Store live credentials encrypted (``apps.trading.secrets``); blank values clear them.
    Raises SecretsKeyMissing when GOGO_SECRETS_KEY is unset."""
    account.api_key_encrypted = secret_encrypt(api_key) if api_key else ""
    account.api_secret_encrypted = secret_encrypt(api_secret) if api_secret else ""
    account.save(update_fields=["api_key_encrypted", "api_secret_encrypted"])
    logger.info("credentials %s for account %s", "set" if api_key else "cleared", account.pk)
    return account


def orchestrator_config_get(*, instrument: Instrument) -> OrchestratorConfig:
    config, _ = OrchestratorConfig.objects.get_or_create(instrument=instrument)
    return config


def orchestrator_config_update(*, config: OrchestratorConfig, **changes) -> OrchestratorConfig:
    """Change the live settings named in CONFIG_FIELDS; validated by the model (full_clean).
    Raises ValueError for an unknown field and django's ValidationError for a bad value."""
    unknown = set(changes) - set(CONFIG_FIELDS)
    if unknown:
        raise ValueError(f"not a live orchestrator setting: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(config, name, value)
    config.full_clean()
    config.save()
    logger.info("orchestrator config %s changed: %s", config.instrument_id, sorted(changes))
    return config


def decision_record(
    *, account: TradingAccount, instrument: Instrument, ts_event_ms: int, result: DecisionResult,
    prediction: Prediction | None, inputs: dict | None = None,
) -> Decision:
    """Store the decision for (account, instrument, second) with the inputs that produced it
    (model probs and edges, gating weights and why, mixture, market conditions, settings); a re-run
    updates it in place. ``confidence`` stores the edge (bps) and ``threshold`` the margin (bps)."""
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
            "filter": result.filter,
            "inputs": inputs or {},
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
            "average_price": state.average_price.quantize(PLACES),
            "realized_pnl": state.realized_pnl.quantize(PLACES),
            "fees_paid": state.fees_paid.quantize(PLACES),
        },
    )
    return position


def client_order_id_for(intent: OrderIntent) -> str:
    """Deterministic id: the same decision always maps to the same order (retries never double).

    ``gogo<account>-<symbol>-<ts ms>-<B|S><purpose>``, at most 36 characters of [A-Za-z0-9-]
    (Binance's newClientOrderId rule ``^[.A-Z:/a-z0-9_-]{1,36}$``)."""
    code = PURPOSE_CODE.get(intent.purpose, "M")
    return f"gogo{intent.account.pk}-{intent.instrument.symbol}-{intent.ts_event_ms}-{intent.side[0]}{code}"[:36]


def order_quantity(*, intent: OrderIntent, price: Decimal) -> Decimal:
    """Base units of the intent: its quantity, or notional / price, floored to LOT (>= 0)."""
    quantity = intent.quantity if intent.quantity is not None else intent.notional / price
    return max(Decimal(0), Decimal(quantity).quantize(LOT, rounding=ROUND_DOWN))


@transaction.atomic
def order_create(*, intent: OrderIntent, quantity: Decimal, reject_reason: str | None = None) -> tuple[Order, bool]:
    """The Order of the intent, created NEW (with its first OrderEvent) unless its client order
    id exists already: then the stored order is returned and ``created`` is False (idempotent).

    ``reject_reason``: the order was refused before it could be sent (the risk check): it is
    created REJECTED with that reason and both events, NEW then REJECTED, as
    ``order_transition`` would leave it.

    A created order is audited (``order.submit``, target the order, payload side/type/quantity/
    price/purpose/client_order_id) with the account's owner as the actor: the orchestrator, a stop
    or a user places every order on the owner's behalf (a backtest's owner is ``gogo-backtest``)."""
    from apps.accounts.services import audit_record

    coid = client_order_id_for(intent)
    defaults = {"account": intent.account, "instrument": intent.instrument, "decision": intent.decision,
                "side": intent.side, "order_type": intent.order_type, "price": intent.price,
                "purpose": intent.purpose, "quantity": quantity, "ts_event": ms_to_datetime(intent.ts_event_ms)}
    if reject_reason is not None:
        defaults.update(status=Order.Status.REJECTED, reject_reason=reject_reason[:255])
    order, created = Order.objects.get_or_create(client_order_id=coid, defaults=defaults)
    if created:
        events = [OrderEvent(order=order, seq=0, status=Order.Status.NEW, ts_event=order.ts_event,
                             detail=f"{order.order_type} {order.side} {order.quantity}")]
        if reject_reason is not None:
            events.append(OrderEvent(order=order, seq=1, status=Order.Status.REJECTED, filled_quantity=Decimal(0),
                                     detail=reject_reason[:255], ts_event=order.ts_event))
        OrderEvent.objects.bulk_create(events)
        audit_record(user=intent.account.owner, action="order.submit", target=order,
                     payload={"side": order.side, "type": order.order_type, "quantity": order.quantity,
                              "price": order.price, "purpose": order.purpose, "client_order_id": coid})
    return order, created


ALLOWED = {
    Order.Status.NEW: {Order.Status.PARTIALLY_FILLED, *FINAL},
    Order.Status.PARTIALLY_FILLED: {Order.Status.PARTIALLY_FILLED, Order.Status.FILLED, Order.Status.CANCELED,
                                    Order.Status.EXPIRED},
}


@transaction.atomic
def order_transition(*, order: Order, status: str, ts_event_ms: int, fills: Iterable[PaperFill] = (),
                     detail: str = "", venue_order_id: str = "") -> list[Fill]:
    """Move ``order`` to ``status`` with new ``fills`` (float price/size/fee from a venue) and store
    the OrderEvent. Returns the new Fill rows. A repeated final status is a no-op (idempotent).

    Raises OrderStateError for a transition the lifecycle forbids (module ALLOWED)."""
    if order.status in FINAL:
        if order.status == status:
            return []
        raise OrderStateError(f"order {order.client_order_id} is {order.status}, cannot become {status}")
    if status not in ALLOWED[order.status] and status != order.status:
        raise OrderStateError(f"order {order.client_order_id}: {order.status} -> {status} not allowed")
    ts = ms_to_datetime(ts_event_ms)
    fills = list(fills)
    rows = []
    if fills:
        next_seq = order.fills.aggregate(m=Max("seq"))["m"] if order.pk else None
        next_seq = 0 if next_seq is None else next_seq + 1
        rows = [Fill(order=order, seq=next_seq + i, price=to_decimal(f.price), quantity=to_decimal(f.size),
                     fee=to_decimal(f.fee), liquidity=f.liquidity, ts_event=ts) for i, f in enumerate(fills)]
        Fill.objects.bulk_create(rows)
    if rows:
        cost = (order.average_price or Decimal(0)) * order.filled_quantity + sum((r.price * r.quantity for r in rows), Decimal(0))
        order.filled_quantity += sum((r.quantity for r in rows), Decimal(0))
        order.average_price = (cost / order.filled_quantity).quantize(PLACES)
    if status == order.status and not rows:  # nothing happened; only learn the venue's id
        if venue_order_id and venue_order_id != order.venue_order_id:
            order.venue_order_id = venue_order_id
            order.save(update_fields=["venue_order_id", "updated_at"])
        return []
    order.status = status
    if venue_order_id:
        order.venue_order_id = venue_order_id
    if status in (Order.Status.REJECTED, Order.Status.EXPIRED, Order.Status.CANCELED) and detail:
        order.reject_reason = detail[:255]
    order.save(update_fields=["status", "filled_quantity", "average_price", "venue_order_id", "reject_reason", "updated_at"])
    seq = (order.events.aggregate(m=Max("seq"))["m"] or 0) + 1
    OrderEvent.objects.create(order=order, seq=seq, status=status, filled_quantity=order.filled_quantity,
                              detail=detail[:255], ts_event=ts)
    return rows


def order_open_list(*, account: TradingAccount, instrument: Instrument | None = None) -> list[Order]:
    """Open orders (NEW, PARTIALLY_FILLED) of the account, oldest first."""
    qs = Order.objects.filter(account=account, status__in=Order.OPEN)
    if instrument is not None:
        qs = qs.filter(instrument=instrument)
    return list(qs.order_by("ts_event", "pk"))


def fills_apply(*, state: PositionState, order: Order, fills: Iterable[Fill]) -> None:
    """Apply stored fills of ``order`` to the in-memory position."""
    for f in fills:
        state.apply_fill(side=order.side, quantity=f.quantity, price=f.price, fee=f.fee)
