"""Paper venue: market and limit orders filled against an order book and trades, with fees,
latency, partial fills and queue position. Pure Python, floats (USD, base units, ms).

Market orders walk the visible opposite levels best first, each level up to its visible size
("walk the book", as nautilus_trader's sandbox with full book data): no hidden liquidity, no
impact beyond the visible levels. What the book cannot fill is expired (Binance's market orders
behave so: status EXPIRED with a partial fill), never left resting.

Limit orders: the marketable part (asks at or below a BUY limit, bids at or above a SELL limit)
fills at once as a taker, walking levels up to the limit price; the rest rests. Its queue
position is the visible size already at its price on its side when it starts resting (0 on a
new level): time priority, we are last. Each later trade at our price by an aggressor on the
other side consumes the queue ahead first, and what is left of the trade fills us (maker fee);
a trade strictly through our price means the level was swept: the queue ahead is gone and the
trade's size fills us (conservative: never more than the trade printed).

Latency: an order reaches the venue ``latency_ms`` after submission and is matched against the
first book the matcher is given at or after that time (:meth:`PaperMatcher.on_book`).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

EPS = 1e-12
OPEN = ("NEW", "PARTIALLY_FILLED")


class InsufficientLiquidity(ValueError):
    """The visible book cannot fill the whole quantity."""


@dataclass(frozen=True, slots=True)
class PaperFill:
    price: float  # quote per base
    size: float  # base units
    fee: float  # quote units (USD)
    liquidity: str = "taker"  # taker | maker
    ts_ms: int = 0


def walk_book(levels: Sequence[tuple[float, float]], quantity: float, fee_rate: float) -> list[PaperFill]:
    """Fill ``quantity`` (base units, > 0) against ``levels`` [(price, size)] given best first.

    Returns one PaperFill per level touched; fee = price * size * fee_rate (taker fee).
    Raises ValueError for a non-positive quantity and InsufficientLiquidity when the visible
    levels hold less than ``quantity`` (nothing is filled then: all or nothing).
    """
    fills = walk_levels(levels, quantity, fee_rate)
    filled = sum(f.size for f in fills)
    if quantity - filled > 1e-12:
        raise InsufficientLiquidity(f"book holds {filled:.8f} of {quantity:.8f} requested")
    return fills


def walk_levels(levels: Sequence[tuple[float, float]], quantity: float, fee_rate: float,
                limit_price: float | None = None, side: str = "BUY", ts_ms: int = 0) -> list[PaperFill]:
    """Like :func:`walk_book` but partial: fills what the levels hold, stopping at ``limit_price``
    (a BUY takes asks <= limit, a SELL bids >= limit). Raises ValueError for quantity <= 0."""
    if not quantity > 0:
        raise ValueError(f"quantity must be > 0, got {quantity}")
    fills: list[PaperFill] = []
    remaining = quantity
    for price, size in levels:
        if limit_price is not None and (price > limit_price + EPS if side == "BUY" else price < limit_price - EPS):
            break
        if size <= 0:
            continue
        take = min(size, remaining)
        fills.append(PaperFill(price, take, price * take * fee_rate, "taker", ts_ms))
        remaining -= take
        if remaining <= 1e-12:
            break
    return fills


@dataclass(slots=True)
class PaperOrder:
    """An order at the paper venue. ``price`` is the limit (None for MARKET); ``status`` one of
    NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED; ``arrive_ms`` when it reaches the
    venue; ``queue_ahead`` base units ahead of it at its price once resting (None before)."""

    client_order_id: str
    side: str
    order_type: str
    quantity: float
    price: float | None
    submit_ms: int
    arrive_ms: int
    status: str = "NEW"
    filled: float = 0.0
    queue_ahead: float | None = None
    fills: list[PaperFill] = field(default_factory=list)
    reason: str = ""

    @property
    def remaining(self) -> float:
        return max(0.0, self.quantity - self.filled)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def resting(self) -> bool:
        return self.is_open and self.queue_ahead is not None


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """One change of an order: its new ``status`` and the fills that came with it."""

    order: PaperOrder
    status: str
    fills: tuple[PaperFill, ...] = ()


class PaperMatcher:
    """Matches one instrument's paper orders (module docstring). Idempotent on client order id."""

    def __init__(self, *, taker_fee: float = 0.001, maker_fee: float = 0.001, latency_ms: int = 0) -> None:
        if latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
        self.taker_fee, self.maker_fee, self.latency_ms = taker_fee, maker_fee, latency_ms
        self.orders: dict[str, PaperOrder] = {}  # every order of the session (submit is idempotent on the id)
        self._open: dict[str, PaperOrder] = {}  # the orders open when last looked at (open_orders)

    def submit(self, *, client_order_id: str, side: str, quantity: float, now_ms: int, order_type: str = "MARKET",
               price: float | None = None) -> PaperOrder:
        """Accept an order (status NEW) arriving ``latency_ms`` later; a known id returns the
        existing order unchanged. Raises ValueError for a bad side, type, quantity or limit price."""
        if client_order_id in self.orders:
            return self.orders[client_order_id]
        if side not in ("BUY", "SELL") or order_type not in ("MARKET", "LIMIT"):
            raise ValueError(f"bad side/type {side!r}/{order_type!r}")
        if not quantity > 0 or (order_type == "LIMIT" and not (price and price > 0)):
            raise ValueError(f"quantity must be > 0 and a LIMIT needs a price > 0, got {quantity}, {price}")
        order = PaperOrder(client_order_id, side, order_type, quantity, price if order_type == "LIMIT" else None,
                           now_ms, now_ms + self.latency_ms)
        self.orders[client_order_id] = self._open[client_order_id] = order
        return order

    def restore(self, order: PaperOrder) -> None:
        """Put back an open order after a restart (reconciliation); its queue position is
        re-measured at the next book, as we cannot know what traded meanwhile."""
        if order.resting:
            order.queue_ahead = None
            order.arrive_ms = 0
        self.orders[order.client_order_id] = order
        if order.is_open:
            self._open[order.client_order_id] = order

    def cancel(self, client_order_id: str) -> OrderUpdate | None:
        """Cancel an open order; None when unknown or already final (a cancel never fails loudly)."""
        order = self.orders.get(client_order_id)
        if order is None or not order.is_open:
            return None
        order.status = "CANCELED"
        return OrderUpdate(order, "CANCELED")

    def open_orders(self) -> list[PaperOrder]:
        """The open orders, oldest first. A final status is never left again, so the orders
        found final are dropped from the open set here: the cost follows the open orders, not
        every order of the session (a day's backtest sends ~1,600)."""
        closed = [cid for cid, o in self._open.items() if not o.is_open]
        for cid in closed:
            del self._open[cid]
        return list(self._open.values())

    def on_book(self, now_ms: int, bids: Sequence[tuple[float, float]], asks: Sequence[tuple[float, float]]
                ) -> list[OrderUpdate]:
        """Match the orders that have arrived by ``now_ms`` and are not resting yet against the
        book (bids and asks best first). Returns the updates in submission order."""
        updates = []
        for order in self.open_orders():
            if order.arrive_ms > now_ms or order.queue_ahead is not None:
                continue
            update = self._arrive(order, now_ms, bids, asks)
            if update is not None:
                updates.append(update)
        return updates

    def _arrive(self, order: PaperOrder, now_ms: int, bids, asks) -> OrderUpdate | None:
        levels = asks if order.side == "BUY" else bids
        fills = walk_levels(levels, order.remaining, self.taker_fee, order.price, order.side, now_ms)
        self._apply(order, fills)
        if order.order_type == "MARKET":
            if not order.filled:
                order.status, order.reason = "REJECTED", "no liquidity on the book"
            elif order.remaining > EPS:
                order.status, order.reason = "EXPIRED", f"book held {order.filled:.8f} of {order.quantity:.8f}"
            return OrderUpdate(order, order.status, tuple(fills))
        if order.is_open:
            same = bids if order.side == "BUY" else asks
            order.queue_ahead = next((s for p, s in same if abs(p - order.price) < EPS), 0.0)
        return OrderUpdate(order, order.status, tuple(fills)) if fills else None

    def on_trade(self, now_ms: int, price: float, size: float, aggressor: str) -> list[OrderUpdate]:
        """A trade of ``size`` at ``price``; ``aggressor`` "BUY" (taker bought: fills resting
        SELLs) or "SELL". Returns the fills of resting limit orders, oldest first."""
        updates = []
        for order in self.open_orders():
            if not order.resting or order.side == aggressor:
                continue
            through = price < order.price - EPS if order.side == "BUY" else price > order.price + EPS
            at = abs(price - order.price) < EPS
            if not (through or at):
                continue
            left = size
            if at:
                eaten = min(order.queue_ahead, left)
                order.queue_ahead -= eaten
                left -= eaten
            else:
                order.queue_ahead = 0.0
            take = min(left, order.remaining)
            if take <= EPS:
                continue
            fill = PaperFill(order.price, take, order.price * take * self.maker_fee, "maker", now_ms)
            self._apply(order, [fill])
            size -= take  # one print fills the oldest resting orders first
            updates.append(OrderUpdate(order, order.status, (fill,)))
        return updates

    @staticmethod
    def _apply(order: PaperOrder, fills: Sequence[PaperFill]) -> None:
        for f in fills:
            order.fills.append(f)
            order.filled += f.size
        if order.filled and order.remaining <= EPS:
            order.status = "FILLED"
        elif order.filled:
            order.status = "PARTIALLY_FILLED"
