"""Plotly figures of one walk-forward scope (a fold or the whole run): equity, drawdown,
reliability, confusion matrices and permutation importance. Pure: a dict in, a ``go.Figure`` out
(shapes and units in ``apps.backtest.reports``). A figure with nothing to draw says so in its title
rather than showing empty axes."""
from __future__ import annotations

import logging
from datetime import UTC, datetime

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from apps.backtest import reports
from apps.backtest.reports import BASELINE, MODEL, ORCHESTRATOR

logger = logging.getLogger(__name__)

TEXT, MUTED, GRID = "#dce3ee", "#8894a8", "#243045"
DASH = {MODEL: "solid", ORCHESTRATOR: "solid", BASELINE: "dot"}


def _layout(fig: go.Figure, title: str, *, height: int = 340) -> go.Figure:
    fig.update_layout(title={"text": title, "font": {"size": 13, "color": MUTED}}, height=height,
                      margin={"l": 60, "r": 20, "t": 40, "b": 40}, paper_bgcolor="rgba(0,0,0,0)",
                      plot_bgcolor="rgba(0,0,0,0)", font={"color": TEXT}, legend={"orientation": "h", "y": -0.18},
                      separators=".,")  # decimal point, thousands comma
    fig.update_xaxes(gridcolor=GRID, zerolinecolor=GRID)
    fig.update_yaxes(gridcolor=GRID, zerolinecolor=GRID)
    return fig


def _none(s: dict) -> str:
    """Why a per-model figure is empty: the total of a run keeps these per fold only."""
    return "none stored" if "fold" in s else "kept per fold; choose a fold"


def _times(ts: list[int]) -> list[datetime]:
    return [datetime.fromtimestamp(t / 1000, tz=UTC) for t in ts]


def equity_figure(wf: dict, s: dict) -> go.Figure:
    """Cumulative net bps per agent (models, orchestrator solid; baselines dotted) against UTC time."""
    fig = go.Figure()
    for a in reports.agents(wf, s):
        ts, bps = reports.curve(wf, s, a)
        if ts:
            fig.add_trace(go.Scatter(x=_times(ts), y=bps, name=a.label, mode="lines",
                                     line={"dash": DASH[a.kind], "width": 2 if a.kind == ORCHESTRATOR else 1.3},
                                     hovertemplate="%{y:,.1f} bps<extra>" + a.label + "</extra>"))
    fig.update_yaxes(title_text="cumulative net PnL (bps)", tickformat=",.0f")
    return _layout(fig, "Equity after costs" if fig.data else "Equity after costs: no curve stored")


def drawdown_figure(wf: dict, s: dict) -> go.Figure:
    """Drawdown below each agent's running peak, in bps (axis) and % (hover), drawn downwards."""
    fig = go.Figure()
    for a in reports.agents(wf, s):
        ts, bps = reports.curve(wf, s, a)
        if not ts:
            continue
        dd = reports.drawdown_bps(bps)
        fig.add_trace(go.Scatter(x=_times(ts), y=[-d for d in dd], customdata=[d / 100 for d in dd], name=a.label,
                                 mode="lines", line={"dash": DASH[a.kind], "width": 1.3},
                                 hovertemplate="−%{customdata:,.2f} % (%{y:,.1f} bps)<extra>" + a.label + "</extra>"))
    fig.update_yaxes(title_text="drawdown (bps; 100 bps = 1 %)", tickformat=",.0f")
    return _layout(fig, "Drawdown" if fig.data else "Drawdown: no curve stored")


def reliability_figure(wf: dict, s: dict) -> go.Figure:
    """Reliability curves: observed frequency against predicted probability per bin, per model and
    the orchestrator, with the diagonal of perfect calibration; marker area grows with the bin count."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], name="perfectly calibrated", mode="lines",
                             line={"dash": "dash", "color": MUTED, "width": 1}, hoverinfo="skip"))
    for a in reports.agents(wf, s):
        bins = [b for b in a.figures.get("reliability") or []
                if isinstance(b, dict) and b.get("predicted") is not None and b.get("observed") is not None]
        if a.kind == BASELINE or not bins:
            continue
        counts = [b.get("count") or 0 for b in bins]
        top = max(counts) or 1
        fig.add_trace(go.Scatter(x=[b["predicted"] for b in bins], y=[b["observed"] for b in bins], customdata=counts,
                                 name=a.label, mode="lines+markers",
                                 marker={"size": [6 + 14 * (c / top) ** 0.5 for c in counts]},
                                 hovertemplate="predicted %{x:.2f} → observed %{y:.2f} (n = %{customdata:,})"
                                               "<extra>" + a.label + "</extra>"))
    fig.update_xaxes(title_text="predicted probability", range=[0, 1])
    fig.update_yaxes(title_text="observed frequency", range=[0, 1])
    return _layout(fig, "Calibration (reliability)" if len(fig.data) > 1 else f"Calibration: {_none(s)}")


def confusion_figure(wf: dict, s: dict) -> go.Figure:
    """One confusion-matrix heatmap per model and the orchestrator: rows the true label, columns the
    predicted one, cells the counts (colour: share of the true row)."""
    entries = [(a.label, a.figures["confusion"]) for a in reports.agents(wf, s)
               if a.kind != BASELINE and isinstance(a.figures.get("confusion"), dict)
               and a.figures["confusion"].get("matrix")]
    if not entries:
        return _layout(go.Figure(), f"Confusion matrices: {_none(s)}")
    fig = make_subplots(rows=1, cols=len(entries), subplot_titles=[label for label, _ in entries],
                        horizontal_spacing=0.06)
    for i, (label, conf) in enumerate(entries, start=1):
        labels, matrix = list(conf.get("labels") or []), [[c or 0 for c in row] for row in conf["matrix"]]
        share = [[c / (sum(row) or 1) for c in row] for row in matrix]
        fig.add_trace(go.Heatmap(z=share, x=labels, y=labels, text=matrix, texttemplate="%{text:,}", zmin=0, zmax=1,
                                 colorscale="Blues", showscale=i == len(entries),
                                 hovertemplate="true %{y}, predicted %{x}: %{text:,}<extra>" + label + "</extra>"),
                      row=1, col=i)
        fig.update_yaxes(autorange="reversed", title_text="true" if i == 1 else None, row=1, col=i)
        fig.update_xaxes(title_text="predicted", row=1, col=i)
    return _layout(fig, "Confusion matrices (trade horizon)", height=320)


def importance_figure(wf: dict, s: dict) -> go.Figure:
    """Permutation importance per input group (the loss increase when the group is shuffled), one
    bar series per model: the network's own (raw) log-loss where the report has it (a model
    calibrated to the prior has 0 calibrated importance everywhere), else the flat older shape."""
    fig = go.Figure()
    for a in reports.agents(wf, s):
        found = a.figures.get("importance") or {}
        if "raw" in found or "calibrated" in found:
            found = found.get("raw") or {}
        imp = {k: v for k, v in found.items() if v is not None}
        if a.kind == BASELINE or not imp:
            continue
        groups = sorted(imp)
        fig.add_trace(go.Bar(y=groups, x=[imp[g] for g in groups], name=a.label, orientation="h",
                             hovertemplate="%{y}: %{x:.4f}<extra>" + a.label + "</extra>"))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="log-loss increase when shuffled")
    return _layout(fig, "Permutation importance per input group" if fig.data else f"Permutation importance: {_none(s)}")


def comparison_figure(rows: list[dict]) -> go.Figure:
    """Net PnL (bps) per fold, one bar series per (run, agent) of the comparison table rows
    (``apps.backtest.selectors.comparison_rows``)."""
    fig = go.Figure()
    series: dict[str, list[dict]] = {}
    for r in rows:
        if r["fold"] != reports.TOTAL:
            series.setdefault(f"#{r['run']} {r['agent']}", []).append(r)
    for name, items in series.items():
        fig.add_trace(go.Bar(x=[f"fold {r['fold']}" for r in items], y=[r["net_pnl_bps"] for r in items], name=name,
                             hovertemplate="%{x}: %{y:,.1f} bps<extra>" + name + "</extra>"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="net PnL (bps)", tickformat=",.0f")
    return _layout(fig, "Net PnL per fold" if fig.data else "Net PnL per fold: nothing to compare", height=380)
