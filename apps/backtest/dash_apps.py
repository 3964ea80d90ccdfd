"""The walk-forward evaluation page as a Dash app (django-plotly-dash), registered on import.

``templates/backtest/evaluation.html`` places it with ``{% plotly_direct %}``: the app is rendered
into the page itself (no iframe, which ``X_FRAME_OPTIONS = "DENY"`` would block), so its
``dcc.Location`` reads the page's own path ``/backtests/<pk>/`` and the callbacks load that run.

Callbacks answer only signed-in users (django-plotly-dash's update view has no login check of its
own); anyone else gets no update. Layout: fold selector, summary cards of the orchestrator and
the scope, a per-agent metrics table, five graphs (equity, drawdown, reliability, confusion,
importance; ``apps.backtest.reports_figures``) and the trades table of a chosen agent.
"""
from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from dash import dcc, html
from dash.dependencies import Input, Output, State
from dash.exceptions import PreventUpdate
from django_plotly_dash import DjangoDash

from apps.backtest import reports, reports_figures, reports_tables, selectors
from apps.backtest.models import BacktestRun
from apps.backtest.reports_format import (
    MISSING,
    fmt_bps,
    fmt_bps_pct,
    fmt_interval,
    fmt_num,
    fmt_p,
    fmt_pct,
    fmt_ratio,
    ratio_reason,
)

logger = logging.getLogger(__name__)

APP_NAME = "BacktestEvaluation"
GRAPHS = ("equity", "drawdown", "reliability", "confusion", "importance")
TRADE_ROWS = 500  # rows shown; the export has them all
PATH = re.compile(r"^/backtests/(\d+)/")

app = DjangoDash(APP_NAME, serve_locally=True)
_config = {"displaylogo": False, "responsive": True}
app.layout = html.Div(className="wf", children=[
    dcc.Location(id="url", refresh=False),
    html.Div(className="wf-toolbar", children=[
        html.Label("Fold", htmlFor="fold", className="wf-toolbar__label"),
        dcc.Dropdown(id="fold", clearable=False, searchable=False, className="wf-toolbar__select"),
        html.P(id="scope-note", className="wf-toolbar__note muted"),
    ]),
    html.Div(id="cards", className="wf-cards"),
    html.Div(id="metrics", className="wf-table"),
    *[dcc.Graph(id=f"graph-{name}", className="wf-graph", config=_config) for name in GRAPHS],
    html.Div(className="wf-toolbar", children=[
        html.Label("Trades of", htmlFor="trades-agent", className="wf-toolbar__label"),
        dcc.Dropdown(id="trades-agent", clearable=False, searchable=False, className="wf-toolbar__select"),
    ]),
    html.Div(id="trades", className="wf-table"),
])


def _load(pathname: str | None, user) -> dict:
    """The CURRENT walk-forward of the run in ``pathname``; PreventUpdate for anyone signed out,
    a path without a run, or a run without a current-shape result."""
    match = PATH.match(pathname or "")
    if user is None or not user.is_authenticated or match is None:
        raise PreventUpdate
    try:
        _, wf, shape = selectors.walk_forward_get(pk=int(match.group(1)))
    except BacktestRun.DoesNotExist as exc:
        raise PreventUpdate from exc
    if shape != reports.CURRENT:
        raise PreventUpdate
    return wf


@app.callback(Output("fold", "options"), Output("fold", "value"), Output("trades-agent", "options"),
              Output("trades-agent", "value"), Input("url", "pathname"))
def choices(pathname: str | None, **kwargs) -> tuple:
    """The fold choices (every fold, then all folds) and the agents whose trades can be listed."""
    wf = _load(pathname, kwargs.get("user"))
    folds = [{"label": f"fold {k}", "value": str(k)} for k in reports.fold_numbers(wf)]
    names = [a.name for a in reports.agents(wf, wf.get("total") or {}) if a.kind != reports.BASELINE]
    return ([*folds, {"label": "all folds", "value": reports.TOTAL}], reports.TOTAL,
            [{"label": n, "value": n} for n in names], "orchestrator")


@app.callback(Output("scope-note", "children"), Output("cards", "children"), Output("metrics", "children"),
              *[Output(f"graph-{name}", "figure") for name in GRAPHS],
              Input("fold", "value"), State("url", "pathname"))
def show_scope(fold: str | None, pathname: str | None, **kwargs) -> tuple:
    """Cards, metrics table and the five figures of the chosen fold (or of all folds)."""
    wf = _load(pathname, kwargs.get("user"))
    try:
        s = reports.scope(wf, fold or reports.TOTAL)
    except reports.ReportError as exc:
        raise PreventUpdate from exc
    figures = [getattr(reports_figures, f"{name}_figure")(wf, s) for name in GRAPHS]
    return (_scope_note(wf, s), _cards(wf, s), _metrics_table(wf, s, fold or reports.TOTAL), *figures)


@app.callback(Output("trades", "children"), Input("fold", "value"), Input("trades-agent", "value"),
              State("url", "pathname"))
def show_trades(fold: str | None, name: str | None, pathname: str | None, **kwargs) -> html.Div:
    """The chosen agent's trades in the chosen fold (all folds: every fold's, in order)."""
    wf = _load(pathname, kwargs.get("user"))
    keys = reports.fold_numbers(wf) if fold in (None, reports.TOTAL) else [fold]
    rows = []
    for key in keys:
        try:
            a = reports.agent(wf, reports.scope(wf, key), name or "orchestrator")
        except reports.ReportError:
            continue
        rows += [(key, t) for t in a.figures.get("trades_table") or [] if isinstance(t, dict)]
    return _trades_table(rows, name or "orchestrator")


def _utc(ms: object) -> str:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError, OverflowError):
        return MISSING


def _scope_note(wf: dict, s: dict) -> str:
    p = wf.get("params") or {}
    head = (f"{p.get('symbol', '?')} (reference {p.get('reference', '?')}) · {p.get('scheme', '?')} scheme · "
            f"trade horizon {p.get('trade_horizon_min', '?')} min · purge {p.get('purge_min', '?')} min · "
            f"embargo {p.get('embargo_min', '?')} min")
    if "fold" not in s:
        return f"{head} · all {len(wf.get('folds') or [])} folds, {fmt_num(s.get('days'), 1)} days"
    train, val = s.get("train") or {}, s.get("validation") or {}
    return (f"{head} · fold {s['fold']}: {s.get('start')} → {s.get('end')} ({fmt_num(s.get('days'), 1)} days) · "
            f"trained on {fmt_num(train.get('samples'), 0)} samples, validated on {fmt_num(val.get('samples'), 0)}")


def _card(title: str, value: str, note: str = "", tone: str = "") -> html.Div:
    return html.Div(className=f"wf-card {tone}".strip(), children=[
        html.Div(title, className="wf-card__title"), html.Div(value, className="wf-card__value"),
        html.Div(note, className="wf-card__note")])


def _tone(x: object) -> str:
    return "" if not isinstance(x, int | float) else ("pos" if x > 0 else "neg" if x < 0 else "")


def _cards(wf: dict, s: dict) -> list[html.Div]:
    """The orchestrator's headline figures and the scope's statistics and costs."""
    o = reports.agent(wf, s, "orchestrator")
    f, costs = o.figures, s.get("costs_bps") or {}
    ll, prior = f.get("log_loss"), f.get("prior_log_loss")
    verdict = "" if ll is None or prior is None else ("beats the prior" if ll < prior else "no better than the prior")
    round_trip = ((wf.get("params") or {}).get("costs") or {}).get("round_trip_bps")
    return [
        _card("Net PnL (orchestrator)", fmt_bps_pct(f.get("net_pnl_bps"), sign=True),
              f"{fmt_bps(f.get('net_pnl_bps_per_day'), sign=True)} per day · {fmt_num(f.get('trades'), 0)} trades",
              _tone(f.get("net_pnl_bps"))),
        _card("Net edge per trade, 95 % interval", fmt_interval(f.get("net_edge_bps_per_trade")),
              f"gross {fmt_interval(f.get('gross_edge_bps_per_trade'))}"),
        _card("Log-loss vs prior", f"{fmt_num(ll, 3)} vs {fmt_num(prior, 3)}", verdict),
        _card("Deflated Sharpe", fmt_num(s.get("deflated_sharpe"), 3),
              f"probability the Sharpe is real after {(wf.get('params') or {}).get('trials', '?')} trial(s)"),
        _card("Hit-rate p-value", fmt_p(s.get("hit_rate_p_value")), f"hit rate {fmt_pct(f.get('hit_rate'), 1)}"),
        _card("Costs", f"fees {fmt_num(costs.get('fees'), 1)} · spread {fmt_num(costs.get('spread'), 1)} · "
                       f"slippage {fmt_num(costs.get('slippage'), 1)} bps",
              f"round trip {fmt_bps(round_trip)}"),
        _card("Max drawdown (orchestrator)", fmt_bps_pct(f.get("max_drawdown_bps")),
              f"Sharpe {fmt_ratio(f.get('sharpe'))} {ratio_reason(f.get('sharpe'))}".strip()),
    ]


def _table(head: list[str], body: list[list], label: str, numeric_from: int = 1) -> html.Table:
    """A table; a body row is a list of texts (one per column) or a list of ``html.Td`` cells taken as they are."""
    cls = ["" if i < numeric_from else "num" for i in range(len(head))]
    return html.Table(className="table--compact", **{"aria-label": label}, children=[
        html.Thead(html.Tr([html.Th(h, className=c) for h, c in zip(head, cls, strict=True)])),
        html.Tbody([html.Tr(row if row and isinstance(row[0], html.Td)
                            else [html.Td(v, className=c) for v, c in zip(row, cls, strict=True)])
                    for row in body]
                   or [html.Tr(html.Td("Nothing stored.", colSpan=len(head)))])])


def _metrics_table(wf: dict, s: dict, fold: str) -> html.Table:
    body = []
    for a in reports.agents(wf, s):
        r = reports_tables.metric_row(fold, a)
        if a.error:
            body.append([html.Td(a.label), html.Td(a.error, colSpan=7, className="note")])
            continue
        ll = "" if r["log_loss"] is None else f"{fmt_num(r['log_loss'], 3)} / {fmt_num(r['prior_log_loss'], 3)}"
        body.append([a.label, fmt_num(r["trades"], 0), fmt_bps(r["net_pnl_bps"], sign=True),
                     fmt_interval(a.figures.get("net_edge_bps_per_trade")),
                     f"{fmt_pct(r['hit_rate'], 1)} (p {fmt_p(r['hit_rate_p_value'])})", ll or MISSING,
                     fmt_ratio(a.figures.get("sharpe")), fmt_bps_pct(r["max_drawdown_bps"])])
    head = ["agent", "trades", "net PnL", "net edge / trade [95 %]", "hit rate", "log-loss / prior", "Sharpe",
            "max drawdown"]
    return _table(head, body, "Metrics per model, orchestrator and baseline")


def _trades_table(rows: list[tuple], name: str) -> html.Div:
    shown = rows[:TRADE_ROWS]
    body = [[str(k), _utc(t.get("entry_ms")), _utc(t.get("exit_ms")), t.get("side") or MISSING,
             fmt_bps(t.get("gross_bps"), 2, sign=True), fmt_bps(t.get("net_bps"), 2, sign=True),
             t.get("reason") or ""] for k, t in shown]
    note = f"{len(rows):,} trades of {name}" + (f", first {TRADE_ROWS:,} shown (the export has all)"
                                                  if len(rows) > TRADE_ROWS else "")
    table = _table(["fold", "entry (UTC)", "exit (UTC)", "side", "gross", "net", "reason"], body,
                   f"Trades of {name}", numeric_from=4)
    return html.Div([html.P(note, className="muted"), table])
