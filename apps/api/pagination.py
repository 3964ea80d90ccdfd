"""Pagination of every list: limit/offset for small tables, a cursor for time series.

Time series (candles, COB frames, predictions) use a cursor on their time column: no COUNT(*) over
millions of rows and stable pages while new rows arrive. ``?limit=`` sets the page size in both.
"""
from __future__ import annotations

from rest_framework.pagination import CursorPagination, LimitOffsetPagination

MAX_LIMIT = 1000


class LimitOffset(LimitOffsetPagination):
    """``?limit=&offset=``; default limit REST_FRAMEWORK["PAGE_SIZE"] (50), at most 1000."""

    max_limit = MAX_LIMIT


class TimeCursor(CursorPagination):
    """``?cursor=&limit=``: pages along ``ordering`` (a time column); a subclass names the column."""

    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT


def time_cursor(column: str) -> type[TimeCursor]:
    """A cursor pagination class ordered by ``column`` (e.g. ``"open_time"`` or ``"-ts_event"``)."""
    return type(f"TimeCursor_{column.lstrip('-')}", (TimeCursor,), {"ordering": column})
