"""How much the desk sends: the account's sizing method, cut to what the risk manager accepts and,
on spot, to what the account holds; floored to the lot and the venue's minimum notional.

Order of the cuts (``order_size``): the sizing method's quantity (``RiskLimit.sizing``: the
config's order notional, a fixed fraction of equity, ATR or capped Kelly on the mixture's net
scores, ``ml.risk.sizing``); a SELL that would leave less than the minimum notional of a long
closes it all; then the smaller of ``RiskManager.capacity`` (``ml.risk.limits.capacity``: the
largest order ``check_order`` approves) and, on spot, ``ml.risk.limits.spot_capacity`` (long-only:
a SELL closes at most the long, a BUY spends at most the cash); then the lot (``LOT``, rounding
down). An order under ``MIN_NOTIONAL_USD`` is not sent: quantity 0, rule "min_notional".
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from apps.market.models import Instrument
from apps.risk.models import RiskLimit
from apps.trading.models import OrchestratorConfig
from apps.trading.services import LOT
from ml.orchestrator import MIXTURE_NAME, NetEdgeScorer
from ml.risk import sizing
from ml.risk.limits import Capacity, spot_capacity

if TYPE_CHECKING:
    from apps.trading.desk import AccountDesk

logger = logging.getLogger(__name__)

# Binance spot MIN_NOTIONAL filter of ETHUSDT and BTCUSDT (the recorded exchangeInfo in the data directory:
# minNotional 10, applyToMarket): the venue refuses a smaller order, so the desk neither sends one nor leaves
# a position that small behind. Belongs on Instrument with the tick and lot sizes.
MIN_NOTIONAL_USD = 10.0


def is_spot(instrument: Instrument) -> bool:
    """True on a spot market (every venue here but Binance USD-M futures): long-only, cash-funded."""
    return instrument.venue != Instrument.Venue.BINANCE_USDM


def wanted_size(*, desk: AccountDesk, config: OrchestratorConfig, scorer: NetEdgeScorer, price: float,
                candles_1m: Sequence) -> tuple[float, str]:
    """(base units the account's sizing method asks for at ``price`` USD, the method's name). Kelly
    needs ``config.gating_min_scored`` net scores of the mixture, else it sizes 0."""
    limit, equity = desk.limit, desk.risk.equity
    cap = float(limit.max_order_notional)
    if limit.sizing == RiskLimit.Sizing.FIXED_FRACTION:
        q = sizing.fixed_fraction(equity=equity, fraction=limit.sizing_fraction, price=price, max_notional=cap)
    elif limit.sizing == RiskLimit.Sizing.ATR:
        a = sizing.atr([c.high for c in candles_1m], [c.low for c in candles_1m], [c.close for c in candles_1m], 14)
        q = sizing.atr_size(equity=equity, risk_fraction=limit.sizing_fraction, atr_value=a,
                            atr_multiple=limit.atr_multiple, price=price, max_notional=cap)
    elif limit.sizing == RiskLimit.Sizing.KELLY:
        p, n = scorer.accuracy(MIXTURE_NAME)
        b = scorer.payoff(MIXTURE_NAME)
        enough = p is not None and b is not None and n >= config.gating_min_scored
        q = sizing.kelly_size(equity=equity, win_rate=p, payoff=b, cap=limit.kelly_cap, price=price,
                              max_notional=cap) if enough else 0.0
    else:
        q = float(config.order_notional) / price
    return q, str(limit.sizing)


def capacity(*, desk: AccountDesk, instrument: Instrument, side: str, price: float, ts: int) -> Capacity:
    """The largest order of ``side`` at ``price`` (USD) the risk manager accepts this cycle and, on
    spot, the account can fund or deliver (pending orders included): the tighter of the two."""
    room = desk.risk.capacity(side=side, price=price, now_ms=ts)
    if not is_spot(instrument):
        return room
    p = desk.position
    pending_buys = max(0.0, desk.risk.position - float(p.quantity))  # open BUY exposure reserves cash
    cash = float(desk.account.starting_balance + p.realized_pnl - p.quantity * p.average_price) - pending_buys * price
    held = spot_capacity(side=side, position=desk.risk.position, cash=cash, price=price,
                         fee_rate=float(desk.account.fee_rate))
    return held if held.quantity < room.quantity else room


def order_size(*, desk: AccountDesk, instrument: Instrument, config: OrchestratorConfig, scorer: NetEdgeScorer,
               side: str, price: float, ts: int, candles_1m: Sequence) -> tuple[Decimal, str, Capacity]:
    """(quantity in base units, purpose, the binding capacity) of an order of ``side`` at ``price``
    (module docstring). Purpose "exit" when the order only brings the position back toward flat,
    else "entry"; quantity 0 when nothing may be sent, ``binding`` then names the rule."""
    wanted, method = wanted_size(desk=desk, config=config, scorer=scorer, price=price, candles_1m=candles_1m)
    room = capacity(desk=desk, instrument=instrument, side=side, price=price, ts=ts)
    held = desk.position.quantity
    closing = held != 0 and (held > 0) == (side == "SELL")
    if closing and float(abs(held)) <= room.quantity and (float(abs(held)) - wanted) * price < MIN_NOTIONAL_USD:
        wanted = float(abs(held))  # close it all rather than leave dust the venue will not take
    binding = room if room.quantity < wanted else Capacity(wanted, "sizing", f"{method} sizing gives {wanted:.8f}")
    quantity = floor_lot(min(wanted, room.quantity))
    if 0 < quantity * Decimal(str(price)) < Decimal(str(MIN_NOTIONAL_USD)):
        binding = Capacity(0.0, "min_notional", f"{quantity} x {price:.2f} USD < {MIN_NOTIONAL_USD:g} USD minimum")
        quantity = Decimal(0)
    return quantity, "exit" if closing and quantity <= abs(held) else "entry", binding


def floor_lot(quantity: float) -> Decimal:
    """``quantity`` (base units) rounded down to ``LOT``, never below 0."""
    return Decimal(str(max(0.0, quantity))).quantize(LOT, rounding=ROUND_DOWN)
