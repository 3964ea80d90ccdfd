"""Execution clients behind one interface: submit, cancel, status, reconcile (and poll).

- :class:`PaperExecutionClient`: the paper venue of ``ml.execution.paper`` (walk the book, fees,
  latency, partial fills, queue position for limit orders), in memory per account and
  instrument; every transition and fill is stored through ``order_transition``.
- :class:`CcxtExecutionClient`: Binance or MEXC spot through ccxt. It refuses to exist unless the
  account is live, holds credentials and its owner enabled live trading.

Both are idempotent on the client order id: ``order_create`` returns a stored order for a
retried intent, and a client never sends an order the venue already knows (the live client asks
the venue by client order id after any doubtful submit). ``reconcile`` after a restart brings
every order the database holds open back in line with the venue.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from apps.market.convert import datetime_to_ms
from apps.market.models import Instrument
from apps.trading.models import Fill, Order, TradingAccount
from apps.trading.services import order_open_list, order_transition
from ml.execution.paper import OrderUpdate, PaperFill, PaperMatcher, PaperOrder

logger = logging.getLogger(__name__)


class LiveTradingDisabled(PermissionError):
    """The account may not trade live: not a live account, no credentials, or not enabled by its owner."""


class VenueError(RuntimeError):
    """A venue call failed in a way that may pass on retry (network, timeout, venue unavailable)."""


@dataclass(slots=True)
class Execution:
    """An order after a client call, with the fills that call stored (to apply to positions)."""

    order: Order
    fills: list[Fill] = field(default_factory=list)


class BookView(Protocol):
    """What the clients and the desk read from a book (``OrderBook`` / ``GridBook``): prices USD,
    sizes base units, levels best first."""

    def levels(self, side: str, depth: int | None = None) -> list[tuple[float, float]]: ...
    def mid(self) -> float | None: ...
    def best_bid(self) -> float | None: ...
    def best_ask(self) -> float | None: ...
    def spread(self) -> float | None: ...


class ExecutionClient(Protocol):
    """One account on one instrument at one venue. Times are exchange ms; books best first."""

    def submit(self, order: Order, *, now_ms: int, book: BookView | None = None) -> Execution: ...
    def cancel(self, order: Order, *, now_ms: int) -> Execution: ...
    def status(self, order: Order, *, now_ms: int) -> Execution: ...
    def reconcile(self, *, now_ms: int) -> list[Execution]: ...
    def poll(self, *, now_ms: int, book: BookView | None = None) -> list[Execution]: ...
    def open_exposure(self) -> float: ...


class PaperExecutionClient:
    """Paper venue for one account and instrument (module docstring). ``book`` arguments are
    anything with ``levels(side, depth)`` (OrderBook / GridBook); ``depth`` levels are walked."""

    def __init__(self, account: TradingAccount, instrument: Instrument, *, depth: int = 200) -> None:
        self.account, self.instrument, self.depth = account, instrument, depth
        self.matcher = PaperMatcher(taker_fee=float(account.fee_rate), maker_fee=float(account.maker_fee_rate),
                                    latency_ms=account.latency_ms)
        self._rows: dict[str, Order] = {}

    def submit(self, order: Order, *, now_ms: int, book: BookView | None = None) -> Execution:
        """Send a NEW order to the paper venue; with zero latency and a ``book`` it is matched at
        once. A known client order id is not sent twice."""
        if not order.is_open:
            return Execution(order)
        self._rows[order.client_order_id] = order
        self.matcher.submit(client_order_id=order.client_order_id, side=order.side, quantity=float(order.quantity),
                            now_ms=now_ms, order_type=order.order_type,
                            price=float(order.price) if order.price is not None else None)
        if book is not None and self.matcher.latency_ms == 0:
            done = self.poll(now_ms=now_ms, book=book)
            return next((e for e in done if e.order.pk == order.pk), Execution(order))
        return Execution(order)

    def poll(self, *, now_ms: int, book: BookView | None = None) -> list[Execution]:
        """Match the orders that reached the venue by ``now_ms`` against ``book``."""
        if book is None or not self.matcher.open_orders():  # nothing to match: the levels are not read
            return []
        updates = self.matcher.on_book(now_ms, book.levels("bid", self.depth), book.levels("ask", self.depth))
        return [self._store(u, now_ms) for u in updates]

    def open_exposure(self) -> float:
        """Signed base units of open orders not yet filled (BUY +, SELL -)."""
        return sum(o.remaining * (1 if o.side == "BUY" else -1) for o in self.matcher.open_orders())

    def on_trade(self, *, now_ms: int, price: float, size: float, aggressor: str) -> list[Execution]:
        """A venue trade (USD, base units, aggressor BUY/SELL): fills resting limit orders."""
        return [self._store(u, now_ms) for u in self.matcher.on_trade(now_ms, price, size, aggressor)]

    def cancel(self, order: Order, *, now_ms: int) -> Execution:
        update = self.matcher.cancel(order.client_order_id)
        if update is None:
            if order.is_open:  # unknown to the venue (e.g. never sent): cancel the record
                order_transition(order=order, status=Order.Status.CANCELED, ts_event_ms=now_ms, detail="canceled")
            return Execution(order)
        return self._store(update, now_ms, detail="canceled")

    def status(self, order: Order, *, now_ms: int) -> Execution:
        """The paper venue and the database agree by construction: the stored row, refreshed."""
        order.refresh_from_db()
        return Execution(order)

    def reconcile(self, *, now_ms: int) -> list[Execution]:
        """After a restart the paper venue's memory is gone. Open LIMIT orders go back into it
        (queue position re-measured at the next book); open MARKET orders expire, since matching
        them now would fill at a price from after the restart."""
        done = []
        for order in order_open_list(account=self.account, instrument=self.instrument):
            if order.client_order_id in self.matcher.orders:
                continue
            if order.order_type == Order.Type.LIMIT:
                self._rows[order.client_order_id] = order
                paper = PaperOrder(order.client_order_id, order.side, "LIMIT", float(order.quantity), float(order.price),
                                   datetime_to_ms(order.ts_event), now_ms, status=order.status,
                                   filled=float(order.filled_quantity), queue_ahead=0.0)
                self.matcher.restore(paper)
                done.append(Execution(order))
            else:
                order_transition(order=order, status=Order.Status.EXPIRED, ts_event_ms=now_ms,
                                 detail="paper venue restarted before the order was matched")
                done.append(Execution(order))
        return done

    def _store(self, update: OrderUpdate, now_ms: int, detail: str = "") -> Execution:
        order = self._rows.get(update.order.client_order_id) or Order.objects.get(client_order_id=update.order.client_order_id)
        fills = order_transition(order=order, status=update.status, ts_event_ms=now_ms, fills=update.fills,
                                 detail=detail or update.order.reason)
        return Execution(order, fills)


def ccxt_exchange(account: TradingAccount, *, urls: dict | None = None, timeout_ms: int = 10_000):
    """A ccxt (sync) exchange for a live account: ``binance`` or ``mexc`` spot with the account's
    decrypted credentials; ``urls`` replaces ``exchange.urls["api"]`` (e.g. the replay venue).

    Raises LiveTradingDisabled unless mode is live, credentials are stored and live_enabled is set."""
    import ccxt

    from apps.trading.secrets import secret_decrypt

    if account.mode != TradingAccount.Mode.LIVE or not account.live_enabled or not account.has_credentials:
        raise LiveTradingDisabled(f"account {account.pk} is not enabled for live trading "
                                  "(needs mode=live, stored credentials and live_enabled)")
    exchange_class = {"binance": ccxt.binance, "mexc": ccxt.mexc}[account.venue]
    exchange = exchange_class({
        "apiKey": secret_decrypt(account.api_key_encrypted), "secret": secret_decrypt(account.api_secret_encrypted),
        "enableRateLimit": True, "timeout": timeout_ms,
        "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                    "fetchMargins": False},
    })
    if urls is not None:
        exchange.urls["api"] = urls
    return exchange


_CCXT_STATUS = {"open": Order.Status.NEW, "closed": Order.Status.FILLED, "canceled": Order.Status.CANCELED,
                "expired": Order.Status.EXPIRED, "rejected": Order.Status.REJECTED}


class CcxtExecutionClient:
    """Live orders on Binance or MEXC spot through ccxt (module docstring). ``exchange`` is a ccxt
    exchange (from :func:`ccxt_exchange`); markets are loaded on first use."""

    def __init__(self, account: TradingAccount, instrument: Instrument, *, exchange=None, urls: dict | None = None) -> None:
        self.account, self.instrument = account, instrument
        self.exchange = exchange if exchange is not None else ccxt_exchange(account, urls=urls)
        self.symbol = f"{instrument.base}/{instrument.quote}" if instrument.base else _unified(instrument.symbol)

    def submit(self, order: Order, *, now_ms: int, book: BookView | None = None) -> Execution:
        """Send the order with its client order id. After a network error or timeout the venue is
        asked for the id: an order that arrived is adopted, never sent twice. A venue refusal
        (InvalidOrder, InsufficientFunds...) makes it REJECTED with the venue's message.

        Raises VenueError when the venue cannot be reached and does not know the order."""
        import ccxt

        if not order.is_open:
            return Execution(order)
        if order.venue_order_id:
            return self.status(order, now_ms=now_ms)
        self._markets()
        try:
            reply = self.exchange.create_order(
                self.symbol, order.order_type.lower(), order.side.lower(), float(order.quantity),
                float(order.price) if order.price is not None else None, {"newClientOrderId": order.client_order_id})
        except (ccxt.InvalidOrder, ccxt.InsufficientFunds, ccxt.PermissionDenied, ccxt.BadSymbol) as exc:
            if "Duplicate" in str(exc):
                return self.status(order, now_ms=now_ms)
            fills = order_transition(order=order, status=Order.Status.REJECTED, ts_event_ms=now_ms,
                                     detail=f"venue: {exc}"[:255])
            return Execution(order, fills)
        except (ccxt.NetworkError, ccxt.ExchangeNotAvailable) as exc:
            logger.warning("submit %s: %s; asking the venue", order.client_order_id, type(exc).__name__)
            found = self._fetch(order)
            if found is None:
                raise VenueError(f"submit {order.client_order_id} failed and the venue does not know it: {exc}") from exc
            reply = found
        return self._apply(order, reply, now_ms)

    def status(self, order: Order, *, now_ms: int) -> Execution:
        """Ask the venue for the order (by client order id) and store what changed."""
        if not order.is_open:
            return Execution(order)
        reply = self._fetch(order)
        if reply is None:
            return Execution(order)
        return self._apply(order, reply, now_ms)

    def cancel(self, order: Order, *, now_ms: int) -> Execution:
        """Cancel at the venue; an order the venue has finished meanwhile keeps its final state."""
        import ccxt

        if not order.is_open:
            return Execution(order)
        self._markets()
        try:
            reply = self.exchange.cancel_order(order.venue_order_id or None, self.symbol,
                                               {"origClientOrderId": order.client_order_id})
        except ccxt.OrderNotFound:
            return self.status(order, now_ms=now_ms)
        except (ccxt.NetworkError, ccxt.ExchangeNotAvailable) as exc:
            raise VenueError(f"cancel {order.client_order_id}: {exc}") from exc
        return self._apply(order, reply, now_ms)

    def reconcile(self, *, now_ms: int) -> list[Execution]:
        """Every order the database holds open is asked for at the venue and updated; open orders
        at the venue with our id prefix that the database does not know are logged."""
        done = [self.status(o, now_ms=now_ms) for o in order_open_list(account=self.account, instrument=self.instrument)]
        known = {e.order.client_order_id for e in done}
        try:
            for remote in self.exchange.fetch_open_orders(self.symbol):
                coid = remote.get("clientOrderId") or ""
                if coid.startswith("gogo") and coid not in known and not Order.objects.filter(client_order_id=coid).exists():
                    logger.error("venue holds open order %s unknown to the database", coid)
        except Exception as exc:  # noqa: BLE001 - reconciliation of known orders is done; this is a report
            logger.warning("fetch_open_orders failed: %r", exc)
        return done

    def poll(self, *, now_ms: int, book: BookView | None = None) -> list[Execution]:
        return [self.status(o, now_ms=now_ms) for o in order_open_list(account=self.account, instrument=self.instrument)]

    def open_exposure(self) -> float:
        """Signed base units of open orders not yet filled (BUY +, SELL -)."""
        return sum(float(o.quantity - o.filled_quantity) * (1 if o.side == "BUY" else -1)
                   for o in order_open_list(account=self.account, instrument=self.instrument))

    def _markets(self) -> None:
        """Load the venue's markets once. Raises VenueError when the venue cannot be reached."""
        import ccxt

        if not self.exchange.markets:
            try:
                self.exchange.load_markets()
            except (ccxt.NetworkError, ccxt.ExchangeNotAvailable) as exc:
                raise VenueError(f"load_markets: {exc}") from exc

    def _fetch(self, order: Order) -> dict | None:
        import ccxt

        self._markets()
        try:
            return self.exchange.fetch_order(order.venue_order_id or None, self.symbol,
                                             {"origClientOrderId": order.client_order_id})
        except ccxt.OrderNotFound:
            return None
        except (ccxt.NetworkError, ccxt.ExchangeNotAvailable) as exc:
            raise VenueError(f"status {order.client_order_id}: {exc}") from exc

    def _fee_usd(self, reply: dict, price: float) -> float | None:
        """The order's total fee in the quote currency (USD), or None when the venue gave none.
        Binance charges the received asset (base on a BUY): converted at ``price``; a fee in a
        third asset (BNB) is taken as quote units, which it is not (noted as a limitation)."""
        fees = reply.get("fees") or ([reply["fee"]] if reply.get("fee") else [])
        total, known = 0.0, False
        for f in fees:
            if not f or f.get("cost") is None:
                continue
            known = True
            total += float(f["cost"]) * (price if f.get("currency") == self.instrument.base else 1.0)
        return total if known else None

    def _apply(self, order: Order, reply: dict, now_ms: int) -> Execution:
        """Store the venue's view: new filled quantity as one fill at the incremental average price
        (venue cost delta / quantity delta), fee from the venue when given, else the account's rate."""
        raw = str((reply.get("info") or {}).get("status") or "").upper()
        status = raw if raw in Order.Status.values else _CCXT_STATUS.get(reply.get("status") or "", order.status)
        filled = Decimal(str(reply.get("filled") or 0))
        cost = Decimal(str(reply.get("cost") or 0))
        if status == Order.Status.NEW and filled > 0:
            status = Order.Status.PARTIALLY_FILLED
        fills: list[PaperFill] = []
        delta = filled - order.filled_quantity
        if delta > 0:
            prior_cost = (order.average_price or Decimal(0)) * order.filled_quantity
            fallback = reply.get("average") or reply.get("price") or 0
            price = float((cost - prior_cost) / delta) if cost > prior_cost else float(fallback)
            if price <= 0:
                raise VenueError(f"order {order.client_order_id}: venue reports a fill without a price")
            fee = self._fee_usd(reply, price)
            fee = fee * float(delta / filled) if fee is not None else price * float(delta) * float(self.account.fee_rate)
            fills.append(PaperFill(price, float(delta), fee, "taker", now_ms))
        stored = order_transition(order=order, status=status, ts_event_ms=now_ms, fills=fills,
                                  detail=f"venue {raw or reply.get('status')}", venue_order_id=str(reply.get("id") or ""))
        return Execution(order, stored)


def _unified(symbol: str) -> str:
    """"ETHUSDT" -> "ETH/USDT" for the quote currencies we trade against."""
    for quote in ("USDT", "USDC", "FDUSD", "BTC", "EUR"):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return f"{symbol[:-len(quote)]}/{quote}"
    raise ValueError(f"cannot split {symbol!r} into base/quote")
