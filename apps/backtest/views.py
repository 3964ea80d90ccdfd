"""Backtest pages: the list with the start form, one run's page (the replay report, or the
walk-forward evaluation lab, a Dash app), the comparison of walk-forward runs, exports and progress."""
from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.db import transaction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from apps.backtest import dash_apps, export, reports, reports_figures, reports_replay, selectors
from apps.backtest.forms import BacktestForm
from apps.backtest.models import BacktestRun
from apps.backtest.services import BacktestError, backtest_create, backtest_enqueue
from apps.backtest.services import backtest_csv as backtest_csv_text

logger = logging.getLogger(__name__)


@login_required
@require_http_methods(["GET", "POST"])
def backtest_list(request: HttpRequest) -> HttpResponse:
    """GET: the runs and the start form. POST (staff / traders; ``BacktestForm`` fields): create a
    run, hand it to the worker (``backtest_enqueue``: Celery, or a thread when embedded) and
    redirect at once to its page, which shows the progress; 403 for viewers, 400 with the form's
    errors for bad input."""
    from apps.risk.selectors import user_can_trade

    can_start = user_can_trade(request.user)
    form = BacktestForm(request.POST or None)
    if request.method == "POST":
        if not can_start:
            return HttpResponseForbidden("only staff and traders may start a backtest")
        if form.is_valid():
            d = form.cleaned_data
            try:
                run = backtest_create(source=d["source"], user=request.user, name=d["name"], start=d["start"],
                                      end=d["end"], params=form.params())
            except BacktestError as exc:
                form.add_error(None, str(exc))
            else:
                transaction.on_commit(lambda: backtest_enqueue(run=run))
                return redirect("backtest-detail", pk=run.pk)
    context = {"runs": selectors.backtest_list(), "can_start": can_start, "form": form}
    return render(request, "backtest/list.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def backtest_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One run: a walk-forward's evaluation lab (older stored shapes: their table and a note), else
    the replay report against the baselines with equity, drawdown, decision markers and orders."""
    run = get_object_or_404(BacktestRun.objects.select_related("account"), pk=pk)
    if run.source == BacktestRun.Source.WALK_FORWARD:
        wf = (run.summary or {}).get("walk_forward") or {}
        shape = reports.shape_of(wf)
        context = {"run": run, "shape": shape, "dash_app": dash_apps.APP_NAME, "tables": export.tables_of(run),
                   "legacy": reports.legacy_summary(wf) if shape == reports.LEGACY else None,
                   "params": wf.get("params") or {}, "search": (run.summary or {}).get("search")}
        return render(request, "backtest/evaluation.html", context)
    orders = reports_replay.order_rows(selectors.backtest_orders(run=run))
    context = {"run": run, "series": run.series or {}, "orders": orders, "markers": reports_replay.markers(orders),
               "rows": reports_replay.report_rows(run.summary or {}), "tables": export.tables_of(run),
               "starting_equity": (run.summary or {}).get("starting_equity")}
    return render(request, "backtest/detail.html", context)


@login_required
@require_GET
def backtest_compare(request: HttpRequest) -> HttpResponse:
    """Walk-forward runs side by side: ``?runs=<pk>&runs=<pk>...`` (two or more) gives each model's
    net PnL and edge per fold (table and chart) and how often two models entered together on the
    same side; fewer than two runs shows the chooser only."""
    choices = selectors.walk_forward_runs()
    try:
        chosen_ids = sorted({int(v) for v in request.GET.getlist("runs")})
    except ValueError:
        return HttpResponseBadRequest("runs: run ids (integers)")
    chosen = [r for r in choices if r.pk in chosen_ids]
    rows = selectors.comparison_rows(runs=chosen) if len(chosen) >= 2 else []
    figure = json.loads(reports_figures.comparison_figure(rows).to_json()) if rows else None
    context = {"choices": choices, "chosen_ids": chosen_ids, "chosen": chosen, "rows": rows, "figure": figure,
               "agreement": selectors.agreement_rows(runs=chosen) if len(chosen) >= 2 else []}
    return render(request, "backtest/compare.html", context)


@login_required
@require_GET
def backtest_export(request: HttpRequest, pk: int) -> HttpResponse:
    """One table of a run (``?table=``, ``apps.backtest.export.tables_of``; default the first) as
    ``?format=csv`` (default) or ``parquet``, streamed; 400 naming a bad table or format."""
    run = get_object_or_404(BacktestRun.objects.select_related("account"), pk=pk)
    fmt = request.GET.get("format", "csv")
    tables = export.tables_of(run)
    table = request.GET.get("table") or (tables[0] if tables else "")
    if fmt not in export.FORMATS:
        return HttpResponseBadRequest(f"format: one of {', '.join(export.FORMATS)}, got {fmt!r}")
    try:
        columns, rows = export.table_rows(run, table)
    except (export.ExportError, reports.ReportError) as exc:
        return HttpResponseBadRequest(str(exc))
    stream = export.csv_stream(columns, rows) if fmt == "csv" else export.parquet_stream(columns, rows)
    response = StreamingHttpResponse(_for_server(request, stream), content_type=export.FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="backtest-{run.pk}-{table}.{fmt}"'
    return response


def _for_server(request: HttpRequest, chunks: Iterator) -> Iterator | AsyncIterator:
    """``chunks`` as the server streams them: under ASGI an async iterator pulling each chunk in the
    sync thread (Django would otherwise read a sync iterator to its end before sending a byte, and the
    rows come from the ORM); under WSGI the iterator itself."""
    if not isinstance(request, ASGIRequest):
        return chunks

    async def pull() -> AsyncIterator:
        done = object()
        while (chunk := await sync_to_async(next, thread_sensitive=True)(chunks, done)) is not done:
            yield chunk
    return pull()


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
    """{"status", "progress" 0..1, "detail", "error"} of a run (polled by the run's page)."""
    run = get_object_or_404(BacktestRun.objects.defer("series", "summary"), pk=pk)
    return JsonResponse({"status": run.status, "progress": run.progress, "detail": run.progress_detail,
                         "error": run.error})
