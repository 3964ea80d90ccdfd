"""The replay backtest report as page rows: ``summary`` of ``ml.backtest.report`` (strategy,
buy-and-hold, always-HOLD) formatted for people: USD with thousands separators, returns and
drawdowns in % and bps, ratios annualised only when the window allows (else the per-second ratio
and why), prices to the instrument's tick and sizes to the lot."""
from __future__ import annotations

import logging

from apps.backtest.reports_format import (
    MISSING,
    PRICE_DECIMALS,
    decimals_of,
    fmt_drawdown,
    fmt_num,
    fmt_pct,
    fmt_price,
    fmt_ratio,
    fmt_size,
    ratio_reason,
)
from apps.market.convert import datetime_to_ms
from apps.trading.models import Order

logger = logging.getLogger(__name__)

COLUMNS = ("strategy", "buy_and_hold", "always_hold")


def _ratio_row(label: str, figures: list[dict], key: str) -> dict:
    values = [f.get(key) for f in figures]
    return {"label": label, "values": [fmt_ratio(v) for v in values],
            "note": "; ".join(sorted({ratio_reason(v) for v in values} - {""}))}


def report_rows(summary: dict) -> list[dict]:
    """Rows ``{"label", "values": [strategy, buy-and-hold, always-HOLD], "note"}`` of the report table.

    A ratio reads "(annualised)" only when it is; otherwise it is the per-second ratio and the note
    gives the reason (an 11-minute window is far below 30 days)."""
    figures = [summary.get(c) or {} for c in COLUMNS]
    s = figures[0]
    rows = [
        {"label": "PnL after fees (USD)", "values": [fmt_num(f.get("pnl"), 2, sign=True) for f in figures]},
        {"label": "Return", "values": [_return(f.get("return")) for f in figures]},
        _ratio_row("Sharpe", figures, "sharpe"), _ratio_row("Sortino", figures, "sortino"),
        _ratio_row("Calmar", figures, "calmar"),
        {"label": "Max drawdown", "values": [fmt_drawdown(f.get("max_drawdown")) for f in figures]},
        {"label": "Trades (fills)", "values": [fmt_num(f.get("trades"), 0) for f in figures]},
        {"label": "Round trips · win rate",
         "values": [f"{fmt_num(s.get('round_trips'), 0)} · {fmt_pct(s.get('win_rate'), 1)}", "", ""]},
        {"label": "Exposure", "values": [fmt_pct(f.get("exposure"), 1) for f in figures]},
        {"label": "Fees (USD)", "values": [fmt_num(s.get("fees"), 2), "", ""]},
    ]
    return [{"note": "", **r} for r in rows]


def _return(fraction: object) -> str:
    """A return fraction in % and bps: ``+0.012 % (+1.2 bps)``."""
    if fraction is None:
        return MISSING
    return f"{fmt_pct(fraction, 3, sign=True)} ({fmt_num(float(fraction) * 10_000, 1, sign=True)} bps)"  # type: ignore[arg-type]


def order_rows(orders: list[Order]) -> list[dict]:
    """Orders for the table and the chart markers: ``ts_ms``, ``time`` (UTC text), ``side``,
    ``purpose``, ``quantity`` (to the lot), ``price`` (to the instrument's tick; "" if unfilled),
    ``price_value`` (float or None), ``status``, ``reason``."""
    out = []
    for o in orders:
        decimals = decimals_of(getattr(o.instrument, "tick_size", None), PRICE_DECIMALS)
        out.append({"ts_ms": datetime_to_ms(o.ts_event), "time": o.ts_event.strftime("%Y-%m-%d %H:%M:%S"),
                    "side": o.side, "purpose": o.purpose, "quantity": fmt_size(o.quantity),
                    "price": "" if o.average_price is None else fmt_price(o.average_price, decimals),
                    "price_value": None if o.average_price is None else float(o.average_price),
                    "status": o.status, "reason": o.reject_reason})
    return out


def markers(rows: list[dict]) -> list[dict]:
    """The filled orders as chart markers ``{"ts", "side", "price", "purpose"}`` (ms, USD)."""
    return [{"ts": r["ts_ms"], "side": r["side"], "price": r["price_value"], "purpose": r["purpose"]}
            for r in rows if r["price_value"] is not None]
