"""The tables of a walk-forward run, as flat rows of raw values (numbers stay numbers, units in
the column names): what the evaluation page formats and what ``apps.backtest.export`` writes.

Tables and columns (``COLUMNS``):

- ``folds``: one row per fold and one ``total`` row: windows (ISO 8601 UTC), days, samples,
  deflated Sharpe, hit-rate p-value and the cost breakdown in bps.
- ``metrics``: one row per (fold or ``total``, agent): trades, net PnL, per-trade edge with its 95 %
  interval, hit rate, log-loss against the prior, Brier, ratios, drawdown, costs.
- ``trades``: one row per trade of every agent and fold (entry / exit ms, side, gross and net bps, reason).
- ``equity``: one row per equity point of every agent and fold (ts ms, cumulative net bps, drawdown bps).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator

from apps.backtest import reports

logger = logging.getLogger(__name__)

COLUMNS: dict[str, tuple[str, ...]] = {
    "folds": ("fold", "start", "end", "days", "train_start", "train_end", "train_samples", "validation_start",
              "validation_end", "validation_samples", "deflated_sharpe", "hit_rate_p_value", "fees_bps",
              "spread_bps", "slippage_bps"),
    "metrics": ("fold", "agent", "kind", "error", "trades", "net_pnl_bps", "net_pnl_bps_per_day",
                "net_edge_bps_mean", "net_edge_bps_lo", "net_edge_bps_hi", "net_edge_p", "gross_edge_bps_mean",
                "hit_rate", "hit_rate_p_value", "log_loss", "prior_log_loss", "brier", "sharpe", "sharpe_annualised",
                "sortino", "calmar", "max_drawdown_bps", "buy_and_hold_bps", "fees_bps", "spread_bps",
                "slippage_bps"),
    "trades": ("fold", "agent", "entry_ms", "exit_ms", "side", "gross_bps", "net_bps", "reason"),
    "equity": ("fold", "agent", "ts_ms", "cumulative_net_bps", "drawdown_bps"),
}
TABLES = tuple(COLUMNS)


def rows(wf: dict, table: str) -> Iterator[dict]:
    """The rows of ``table`` (one of TABLES) of a CURRENT walk-forward, each a dict keyed by
    ``COLUMNS[table]``. Raises reports.ReportError for an unknown table."""
    if table not in COLUMNS:
        raise reports.ReportError(f"table: one of {', '.join(TABLES)}, got {table!r}")
    return {"folds": _folds, "metrics": _metrics, "trades": _trades, "equity": _equity}[table](wf)


def _scopes(wf: dict) -> Iterator[tuple[str | int, dict]]:
    for f in wf.get("folds") or []:
        yield f.get("fold"), f
    yield reports.TOTAL, wf.get("total") or {}


def _window(w: object) -> dict:
    return w if isinstance(w, dict) else {}


def _folds(wf: dict) -> Iterator[dict]:
    for key, s in _scopes(wf):
        train, val, costs = _window(s.get("train")), _window(s.get("validation")), _window(s.get("costs_bps"))
        yield {"fold": str(key), "start": s.get("start"), "end": s.get("end"), "days": s.get("days"),
               "train_start": train.get("start"), "train_end": train.get("end"), "train_samples": train.get("samples"),
               "validation_start": val.get("start"), "validation_end": val.get("end"),
               "validation_samples": val.get("samples"), "deflated_sharpe": s.get("deflated_sharpe"),
               "hit_rate_p_value": s.get("hit_rate_p_value"), "fees_bps": costs.get("fees"),
               "spread_bps": costs.get("spread"), "slippage_bps": costs.get("slippage")}


def metric_row(fold: str | int, a: reports.Agent) -> dict:
    """One ``metrics`` row of agent ``a`` (PERF or LITE figures; missing ones None)."""
    f = a.figures
    net = f.get("net_edge_bps_per_trade") if isinstance(f.get("net_edge_bps_per_trade"), dict) else {}
    gross = f.get("gross_edge_bps_per_trade") if isinstance(f.get("gross_edge_bps_per_trade"), dict) else {}
    costs = _window(f.get("costs_bps"))
    sharpe = _window(f.get("sharpe"))
    return {"fold": str(fold), "agent": a.name, "kind": a.kind, "error": a.error, "trades": f.get("trades"),
            "net_pnl_bps": f.get("net_pnl_bps"), "net_pnl_bps_per_day": f.get("net_pnl_bps_per_day"),
            "net_edge_bps_mean": net.get("mean"), "net_edge_bps_lo": net.get("lo"), "net_edge_bps_hi": net.get("hi"),
            "net_edge_p": net.get("p"), "gross_edge_bps_mean": gross.get("mean"), "hit_rate": f.get("hit_rate"),
            "hit_rate_p_value": f.get("hit_rate_p_value"), "log_loss": f.get("log_loss"),
            "prior_log_loss": f.get("prior_log_loss"), "brier": f.get("brier"), "sharpe": sharpe.get("value"),
            "sharpe_annualised": sharpe.get("annualised"), "sortino": _window(f.get("sortino")).get("value"),
            "calmar": _window(f.get("calmar")).get("value"), "max_drawdown_bps": f.get("max_drawdown_bps"),
            "buy_and_hold_bps": f.get("buy_and_hold_bps"), "fees_bps": costs.get("fees"),
            "spread_bps": costs.get("spread"), "slippage_bps": costs.get("slippage")}


def _metrics(wf: dict) -> Iterator[dict]:
    for key, s in _scopes(wf):
        for a in reports.agents(wf, s):
            yield metric_row(key, a)


def _trades(wf: dict) -> Iterator[dict]:
    for key, s in _scopes(wf):
        if key == reports.TOTAL:
            continue  # the total's trades are the folds' trades again
        for a in reports.agents(wf, s):
            for t in a.figures.get("trades_table") or []:
                if isinstance(t, dict):
                    yield {"fold": str(key), "agent": a.name, **{c: t.get(c) for c in COLUMNS["trades"][2:]}}


def _equity(wf: dict) -> Iterator[dict]:
    for key, s in _scopes(wf):
        if key == reports.TOTAL:
            continue
        for a in reports.agents(wf, s):
            ts, bps = reports.equity_points(a.figures)
            for t, v, d in zip(ts, bps, reports.drawdown_bps(bps), strict=True):
                yield {"fold": str(key), "agent": a.name, "ts_ms": t, "cumulative_net_bps": v, "drawdown_bps": d}
