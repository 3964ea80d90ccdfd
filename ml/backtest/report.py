"""The backtest report: pure functions over one run's per-second series and fills.

Inputs (all per exchange second of the run, oldest first, T rows):

- ``ts`` (T,) ms since epoch; ``mid`` (T,) USD (mid of the traded book, carried forward when a
  second has no book); ``equity`` (T,) USD = starting balance + realized PnL after fees +
  unrealized PnL marked at mid; ``position`` (T,) signed base units.
- fills: ``Fill(ts, side, quantity, price, fee)`` in time order (base units, USD).

Figures (formulas):

- PnL after fees = E_T - E_0 (fees are already subtracted from realized PnL, see
  ``apps.trading.positions.PositionState``); return = PnL / E_0.
- Sharpe, Sortino, max drawdown: ``ml.risk.metrics`` over the simple 1 s returns of the equity
  curve, annualised with P = 31,536,000 periods (Sharpe 1994; Sortino & Price 1994).
- Round trip: the fills from a flat position back to flat (a fill through zero closes one trip and
  opens the next with the remainder). Its PnL = sum of signed cash flows of its fills minus fees
  (plus the price x remainder when it crossed zero). Win rate = trips with PnL > 0 / closed trips
  (freqtrade counts a trade's win the same way: profit after fees > 0).
- Trades = fills; exposure = fraction of seconds with position != 0.
- Buy-and-hold: at the first second all of E_0 buys the base asset at mid, paying ``fee_rate`` on
  the notional, and is marked at mid: B_t = E_0 (1 - f) mid_t / mid_0. Always-HOLD: E_t = E_0.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ml.risk import metrics

logger = logging.getLogger(__name__)

CSV_HEADER = ("ts_ms", "mid", "equity", "position", "drawdown", "buy_and_hold_equity")


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution: ``ts`` ms, side BUY|SELL, quantity base units (> 0), price and fee USD."""

    ts: int
    side: str
    quantity: float
    price: float
    fee: float


def order_log_sha256(orders: Iterable[tuple]) -> str:
    """sha256 hex digest of the ordered order log: one line ``"ts side qty price status"`` per order.

    ``orders``: (ts ms, side, quantity, average price or None, status) in (ts, client id) order.
    Account ids are left out on purpose, so two runs on two fresh accounts compare equal."""
    lines = "\n".join(f"{ts} {side} {qty} {'' if price is None else price} {status}"
                      for ts, side, qty, price, status in orders)
    return hashlib.sha256(lines.encode()).hexdigest()


def round_trips(fills: Sequence[Fill]) -> list[float]:
    """PnL (USD, after fees) of every closed round trip (definition in the module docstring)."""
    trips: list[float] = []
    position, cash = 0.0, 0.0
    for f in fills:
        signed = f.quantity if f.side == "BUY" else -f.quantity
        after = position + signed
        if position != 0 and (after == 0 or (after > 0) != (position > 0)):
            closing = -position  # the part of this fill that brings the position to zero
            share = abs(closing) / f.quantity
            trips.append(cash - closing * f.price - f.fee * share)
            rest = signed - closing
            position, cash = rest, -rest * f.price - f.fee * (1 - share)
            if abs(position) < 1e-12:
                position, cash = 0.0, 0.0
            continue
        position, cash = after, cash - signed * f.price - f.fee
    return trips


def buy_and_hold(mid: Sequence[float], starting_equity: float, fee_rate: float) -> np.ndarray:
    """(T,) equity of buying at the first mid with all of ``starting_equity`` (fee ``fee_rate``
    on the notional) and holding; empty for empty ``mid``."""
    m = np.asarray(mid, dtype=np.float64)
    if m.size == 0:
        return m
    return starting_equity * (1 - fee_rate) * m / m[0]


def curve_figures(equity: Sequence[float]) -> dict[str, float]:
    """PnL (USD), return, Sharpe, Sortino and max drawdown of one equity curve of 1 s periods."""
    e = np.asarray(equity, dtype=np.float64)
    if e.size == 0:
        return {"pnl": 0.0, "return": 0.0, "sharpe": 0.0, "sortino": 0.0, "max_drawdown": 0.0}
    r = metrics.returns(e)
    p = metrics.periods_per_year(1.0)
    return {"pnl": float(e[-1] - e[0]), "return": float(e[-1] / e[0] - 1) if e[0] else 0.0,
            "sharpe": metrics.sharpe(r, p), "sortino": metrics.sortino(r, p), "max_drawdown": metrics.max_drawdown(e)}


def backtest_report(*, ts: Sequence[int], mid: Sequence[float], equity: Sequence[float], position: Sequence[float],
                    fills: Sequence[Fill], fee_rate: float) -> dict:
    """The report of one run (module docstring): strategy figures, round trips, trades, exposure,
    fees, and the buy-and-hold and always-HOLD baselines over the same span.

    Raises ValueError when the series lengths differ."""
    n = len(ts)
    if not (len(mid) == len(equity) == len(position) == n):
        raise ValueError(f"series lengths differ: ts {n}, mid {len(mid)}, equity {len(equity)}, position {len(position)}")
    trips = round_trips(fills)
    start = float(equity[0]) if n else 0.0
    strategy = curve_figures(equity)
    strategy.update({
        "trades": len(fills), "round_trips": len(trips),
        "win_rate": sum(t > 0 for t in trips) / len(trips) if trips else None,
        "exposure": float(np.mean(np.asarray(position, dtype=np.float64) != 0)) if n else 0.0,
        "fees": float(sum(f.fee for f in fills)), "final_equity": float(equity[-1]) if n else start,
    })
    hold = curve_figures([start] * n)
    hold.update({"trades": 0, "exposure": 0.0})
    bh = curve_figures(buy_and_hold(mid, start, fee_rate))
    bh.update({"trades": 1 if n else 0, "exposure": 1.0 if n else 0.0})
    return {"seconds": n, "start_ms": int(ts[0]) if n else None, "end_ms": int(ts[-1]) if n else None,
            "starting_equity": start, "strategy": _rounded(strategy), "buy_and_hold": _rounded(bh),
            "always_hold": _rounded(hold)}


def series_csv(*, ts: Sequence[int], mid: Sequence[float], equity: Sequence[float], position: Sequence[float],
               fee_rate: float) -> str:
    """CSV text: header CSV_HEADER, then one row per second (drawdown as a fraction)."""
    dd = metrics.drawdown_curve(equity)
    bh = buy_and_hold(mid, float(equity[0]) if len(equity) else 0.0, fee_rate)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for i, t in enumerate(ts):
        writer.writerow((int(t), f"{mid[i]:.2f}", f"{equity[i]:.4f}", f"{position[i]:.8f}", f"{dd[i]:.6f}", f"{bh[i]:.4f}"))
    return out.getvalue()


def _rounded(figures: dict) -> dict:
    return {k: round(v, 8) if isinstance(v, float) else v for k, v in figures.items()}
