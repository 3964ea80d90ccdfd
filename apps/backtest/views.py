"""Backtest pages: the list with a start form, one run's report with plots, its CSV and progress."""
from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from apps.backtest import selectors
from apps.backtest.models import BacktestRun
from apps.backtest.services import BacktestError, backtest_create
from apps.backtest.services import backtest_csv as backtest_csv_text

logger = logging.getLogger(__name__)


@login_required
@require_http_methods(["GET", "POST"])
def backtest_list(request: HttpRequest) -> HttpResponse:
    """GET: the runs. POST (staff / traders) ``source``, optional ``name``, ``start``, ``end`` (ISO 8601,
    UTC) and, for a walk-forward, ``folds``, ``model``, ``epochs``, ``window_days``: create a run and enqueue it on the
    ``default`` queue (eager in the embedded default), then redirect to it; 403 for viewers,
    400 naming a bad field."""
    from apps.risk.selectors import user_can_trade

    if request.method == "POST":
        if not user_can_trade(request.user):
            return HttpResponseForbidden("only staff and traders may start a backtest")
        try:
            start, end = _when(request.POST.get("start"), "start"), _when(request.POST.get("end"), "end")
            params = {k: request.POST[k] for k in ("folds", "model", "epochs", "window_days") if request.POST.get(k)}
            run = backtest_create(source=request.POST.get("source", BacktestRun.Source.ORDERBOOK), user=request.user,
                                  name=request.POST.get("name", "")[:128], start=start, end=end, params=params)
        except BacktestError as exc:
            return HttpResponse(str(exc), status=400)
        from workers.backtest import run_backtest

        transaction.on_commit(lambda: run_backtest.delay(run.pk))
        return redirect("backtest-detail", pk=run.pk)
    context = {"runs": selectors.backtest_list(), "can_start": user_can_trade(request.user),
               "sources": BacktestRun.Source.choices}
    return render(request, "backtest/list.html", context)


def _when(value: str | None, field: str) -> datetime | None:
    """An optional ISO 8601 datetime form field (naive = UTC). Raises BacktestError naming the field."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BacktestError(f"{field}: not an ISO 8601 datetime: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@login_required
@require_GET
def backtest_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One run: summary figures against the baselines, equity vs buy-and-hold, drawdown, orders."""
    run = get_object_or_404(BacktestRun, pk=pk)
    context = {"run": run, "orders": selectors.backtest_orders(run=run), "series": run.series or {},
               "strategy": run.summary.get("strategy", {}), "buy_and_hold": run.summary.get("buy_and_hold", {}),
               "always_hold": run.summary.get("always_hold", {}),
               "starting_equity": run.summary.get("starting_equity"),
               "walk_forward": run.summary.get("walk_forward")}
    return render(request, "backtest/detail.html", context)


@login_required
@require_GET
def backtest_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """The run's per-second series as a CSV download (header ``ml.backtest.report.CSV_HEADER``)."""
    run = get_object_or_404(BacktestRun.objects.select_related("account"), pk=pk)
    response = HttpResponse(backtest_csv_text(run=run), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="backtest-{run.pk}.csv"'
    return response


@login_required
@require_GET
def backtest_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """{"status", "progress" 0..1, "detail", "error"} of a run (polled by the detail page)."""
    run = get_object_or_404(BacktestRun.objects.defer("series"), pk=pk)
    return JsonResponse({"status": run.status, "progress": run.progress, "detail": run.progress_detail,
                         "error": run.error})
