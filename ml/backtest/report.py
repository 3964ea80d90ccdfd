"""The backtest report: pure functions over one run's per-second series and fills.

Inputs (all per exchange second of the run, oldest first, T rows):

- ``ts`` (T,) ms since epoch; ``mid`` (T,) USD (mid of the traded book, carried forward when a
  second has no book); ``equity`` (T,) USD = starting balance + realized PnL after fees +
  unrealized PnL marked at mid; ``position`` (T,) signed base units.
- fills: ``Fill(ts, side, quantity, price, fee)`` in time order (base units, USD).

Figures (formulas):

- PnL after fees = E_T - E_0 (fees are already subtracted from realized PnL, see
  ``apps.trading.positions.PositionState``); return = PnL / E_0.
- Sharpe, Sortino, Calmar: ``ml.evaluation.stats.annualised_ratio`` over the simple 1 s returns of
  the equity curve (Sharpe 1994; Sortino & Price 1994; Young 1991), each ``{"value", "annualised",
  "reason"}``. Annualised (P = 31,536,000 periods a year) only when the run covers at least
  ``MIN_SPAN_DAYS`` days and ``MIN_OBS`` returns: scaling 649 one-second returns by sqrt(P) gives
  a "Sharpe 25" that means nothing. A shorter run reports the per-second ratio with the reason.
- Max drawdown: ``ml.risk.metrics.max_drawdown``, a fraction of the running peak, also in bps.
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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ml.evaluation.stats import annualised_ratio
from ml.risk import metrics

logger = logging.getLogger(__name__)

CSV_HEADER = ("ts_ms", "mid", "equity", "position", "drawdown", "buy_and_hold_equity")
PERIOD_SECONDS = 1.0  # one equity sample per exchange second
MIN_SPAN_DAYS, MIN_OBS = 30.0, 30  # below either, ratios stay per-period (not annualised)


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


def _ratio(kind: str, r: np.ndarray, span_seconds: float) -> dict:
    try:
        return annualised_ratio(kind, r, period_seconds=PERIOD_SECONDS, span_seconds=span_seconds,
                                min_span_days=MIN_SPAN_DAYS, min_obs=MIN_OBS)
    except ValueError as exc:  # non-finite returns (an equity of 0): no ratio, say why
        return {"value": None, "annualised": False, "reason": str(exc)}


def curve_figures(equity: Sequence[float], *, span_seconds: float) -> dict:
    """PnL (USD), return (fraction), Sharpe / Sortino / Calmar (``{"value", "annualised", "reason"}``,
    module docstring), max drawdown (fraction of the peak) and ``max_drawdown_bps`` of one equity
    curve of 1 s periods covering ``span_seconds``."""
    e = np.asarray(equity, dtype=np.float64)
    r = metrics.returns(e)
    ratios = {kind: _ratio(kind, r, span_seconds) for kind in ("sharpe", "sortino", "calmar")}
    if e.size == 0:
        return {"pnl": 0.0, "return": 0.0, **ratios, "max_drawdown": 0.0, "max_drawdown_bps": 0.0}
    mdd = metrics.max_drawdown(e)
    return {"pnl": float(e[-1] - e[0]), "return": float(e[-1] / e[0] - 1) if e[0] else 0.0, **ratios,
            "max_drawdown": mdd, "max_drawdown_bps": mdd * 10_000}


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
    span = (int(ts[-1]) - int(ts[0])) / 1000 if n else 0.0
    strategy = curve_figures(equity, span_seconds=span)
    strategy.update({
        "trades": len(fills), "round_trips": len(trips),
        "win_rate": sum(t > 0 for t in trips) / len(trips) if trips else None,
        "exposure": float(np.mean(np.asarray(position, dtype=np.float64) != 0)) if n else 0.0,
        "fees": float(sum(f.fee for f in fills)), "final_equity": float(equity[-1]) if n else start,
    })
    hold = curve_figures([start] * n, span_seconds=span)
    hold.update({"trades": 0, "exposure": 0.0})
    bh = curve_figures(buy_and_hold(mid, start, fee_rate), span_seconds=span)
    bh.update({"trades": 1 if n else 0, "exposure": 1.0 if n else 0.0})
    return {"seconds": n, "span_seconds": span, "start_ms": int(ts[0]) if n else None, "end_ms": int(ts[-1]) if n else None,
            "starting_equity": start, "strategy": _rounded(strategy), "buy_and_hold": _rounded(bh),
            "always_hold": _rounded(hold)}


def series_rows(*, ts: Sequence[int], mid: Sequence[float], equity: Sequence[float], position: Sequence[float],
                fee_rate: float) -> Iterator[tuple]:
    """One tuple per second in CSV_HEADER order: ts ms, mid and equity USD, position base units,
    drawdown (fraction of the peak), buy-and-hold equity USD."""
    dd = metrics.drawdown_curve(equity)
    bh = buy_and_hold(mid, float(equity[0]) if len(equity) else 0.0, fee_rate)
    for i, t in enumerate(ts):
        yield int(t), float(mid[i]), float(equity[i]), float(position[i]), float(dd[i]), float(bh[i])


def series_csv(*, ts: Sequence[int], mid: Sequence[float], equity: Sequence[float], position: Sequence[float],
               fee_rate: float) -> str:
    """CSV text: header CSV_HEADER, then one row per second (drawdown as a fraction)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for t, m, e, p, d, b in series_rows(ts=ts, mid=mid, equity=equity, position=position, fee_rate=fee_rate):
        writer.writerow((t, f"{m:.2f}", f"{e:.4f}", f"{p:.8f}", f"{d:.6f}", f"{b:.4f}"))
    return out.getvalue()


def _rounded(figures: dict) -> dict:
    return {k: round(v, 8) if isinstance(v, float) else _rounded(v) if isinstance(v, dict) else v
            for k, v in figures.items()}
