"""Reads for backtest pages."""
from __future__ import annotations

from django.db.models import QuerySet

from apps.backtest.models import BacktestRun
from apps.trading.models import Order


def backtest_list(*, limit: int = 100) -> QuerySet[BacktestRun]:
    """Newest runs first, without their (large) series."""
    return BacktestRun.objects.defer("series").select_related("created_by")[:limit]


def backtest_orders(*, run: BacktestRun, limit: int = 500) -> list[Order]:
    """The run's orders in time order (its own paper account), at most ``limit``."""
    if run.account_id is None:
        return []
    return list(Order.objects.filter(account_id=run.account_id).order_by("ts_event", "client_order_id")[:limit])
