"""Reads for backtest pages: runs, their orders, their walk-forward results and comparisons."""
from __future__ import annotations

import itertools
import logging

from django.db.models import QuerySet

from apps.backtest import reports
from apps.backtest.models import BacktestRun
from apps.trading.models import Order

logger = logging.getLogger(__name__)


def backtest_list(*, limit: int = 100) -> QuerySet[BacktestRun]:
    """Newest runs first, without their (large) series."""
    return BacktestRun.objects.defer("series").select_related("created_by")[:limit]


def backtest_orders(*, run: BacktestRun, limit: int | None = 500) -> list[Order]:
    """The run's orders in time order (its own paper account), at most ``limit`` (None: all)."""
    if run.account_id is None:
        return []
    return list(Order.objects.filter(account_id=run.account_id).select_related("instrument")
                .order_by("ts_event", "client_order_id")[:limit])


def walk_forward_get(*, pk: int) -> tuple[BacktestRun, dict, str]:
    """(run, its ``summary["walk_forward"]`` or {}, its shape: reports.CURRENT / LEGACY / EMPTY).
    Raises BacktestRun.DoesNotExist."""
    run = BacktestRun.objects.defer("series").get(pk=pk)
    wf = (run.summary or {}).get("walk_forward") or {}
    return run, wf, reports.shape_of(wf)


def walk_forward_runs(*, limit: int = 100) -> list[BacktestRun]:
    """Finished walk-forward runs whose result has the current shape, newest first (the comparison
    page's choices)."""
    runs = BacktestRun.objects.defer("series").filter(source=BacktestRun.Source.WALK_FORWARD,
                                                      status=BacktestRun.Status.FINISHED)[:limit]
    return [r for r in runs if reports.shape_of((r.summary or {}).get("walk_forward")) == reports.CURRENT]


def comparison_rows(*, runs: list[BacktestRun]) -> list[dict]:
    """One row per (run, fold or total, model or orchestrator): ``run``, ``fold``, ``agent``,
    ``trades``, ``net_pnl_bps``, net edge per trade (``edge_bps``, ``edge_lo``, ``edge_hi``, bps),
    ``hit_rate``, ``log_loss``, ``prior_log_loss`` and ``error``. Runs without a current-shape
    result give no rows."""
    out = []
    for run in runs:
        wf = (run.summary or {}).get("walk_forward") or {}
        if reports.shape_of(wf) != reports.CURRENT:
            continue
        for key in [*reports.fold_numbers(wf), reports.TOTAL]:
            for a in reports.agents(wf, reports.scope(wf, key)):
                if a.kind == reports.BASELINE:
                    continue
                edge = a.figures.get("net_edge_bps_per_trade") or {}
                out.append({"run": run.pk, "fold": key, "agent": a.name, "trades": a.figures.get("trades"),
                            "net_pnl_bps": a.figures.get("net_pnl_bps"), "edge_bps": edge.get("mean"),
                            "edge_lo": edge.get("lo"), "edge_hi": edge.get("hi"), "hit_rate": a.figures.get("hit_rate"),
                            "log_loss": a.figures.get("log_loss"), "prior_log_loss": a.figures.get("prior_log_loss"),
                            "error": a.error})
    return out


def agreement_rows(*, runs: list[BacktestRun]) -> list[dict]:
    """Per run and pair of models (the orchestrator included), over all folds: ``run``, ``a``, ``b``,
    ``trades`` (entries of ``a``) and ``agreement`` (share of them where ``b`` entered on the same
    side at the same time, ``reports.agreement``); pairs without trade tables are left out."""
    out = []
    for run in runs:
        wf = (run.summary or {}).get("walk_forward") or {}
        if reports.shape_of(wf) != reports.CURRENT:
            continue
        names = [*reports.model_names(wf), "orchestrator"]
        for a, b in itertools.permutations(names, 2):
            agreed = total = 0
            for key in reports.fold_numbers(wf):
                s = reports.scope(wf, key)
                share = reports.agreement(wf, s, a, b)
                if share is not None:
                    n = len(reports.agent(wf, s, a).figures.get("trades_table") or [])
                    agreed, total = agreed + share * n, total + n
            if total:
                out.append({"run": run.pk, "a": a, "b": b, "trades": total, "agreement": agreed / total})
    return out
