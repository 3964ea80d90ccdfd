"""Every table of a backtest run as streamed CSV or Parquet (pyarrow).

Tables:

- a walk-forward run (current shape): ``folds``, ``metrics``, ``trades``, ``equity``
  (``apps.backtest.reports_tables``);
- a walk-forward run of the older shape: ``folds`` (``apps.backtest.reports.legacy_summary``);
- a replay run: ``equity`` (the per-second series with drawdown and buy-and-hold,
  ``ml.backtest.report.series_rows``) and ``trades`` (the run account's orders).

Both formats are produced chunk by chunk (``CHUNK_ROWS`` rows per CSV block or Parquet row group),
so a long run is never held in memory as one file. Parquet columns are typed (``TYPES``): strings,
64-bit integers (ms since epoch, counts), booleans and doubles (bps, fractions, USD).
"""
from __future__ import annotations

import csv
import io
import itertools
import logging
from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from apps.backtest import reports, reports_tables, selectors
from apps.backtest.models import BacktestRun
from apps.market.convert import datetime_to_ms
from ml.backtest import report as bt_report

logger = logging.getLogger(__name__)

CHUNK_ROWS = 5_000
FORMATS = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
REPLAY_COLUMNS = {
    "equity": bt_report.CSV_HEADER,
    "trades": ("ts_ms", "side", "purpose", "order_type", "quantity", "filled_quantity", "average_price", "status",
               "reason", "client_order_id"),
}
LEGACY_COLUMNS = ("fold", "test_start_ms", "test_end_ms", "n_test", "accuracy", "trades", "pnl_bps", "buy_and_hold_bps")
STRINGS = {"fold", "agent", "kind", "error", "start", "end", "train_start", "train_end", "validation_start",
           "validation_end", "side", "reason", "purpose", "order_type", "status", "client_order_id"}
INTEGERS = {"entry_ms", "exit_ms", "ts_ms", "trades", "train_samples", "validation_samples", "test_start_ms",
            "test_end_ms", "n_test"}
BOOLEANS = {"sharpe_annualised"}


class ExportError(ValueError):
    """An export that cannot be made (unknown table or format); the message names the field."""


def tables_of(run: BacktestRun) -> tuple[str, ...]:
    """The table names a run can export (module docstring)."""
    if run.source != BacktestRun.Source.WALK_FORWARD:
        return tuple(REPLAY_COLUMNS)
    shape = reports.shape_of((run.summary or {}).get("walk_forward"))
    return reports_tables.TABLES if shape == reports.CURRENT else ("folds",) if shape == reports.LEGACY else ()


def table_rows(run: BacktestRun, table: str) -> tuple[tuple[str, ...], Iterator[dict]]:
    """(columns, rows as dicts) of ``table`` of ``run``. Raises ExportError naming a table the run lacks."""
    if table not in tables_of(run):
        raise ExportError(f"table: one of {', '.join(tables_of(run)) or 'none (nothing stored yet)'}, got {table!r}")
    wf = (run.summary or {}).get("walk_forward") or {}
    if run.source == BacktestRun.Source.WALK_FORWARD:
        if reports.shape_of(wf) == reports.LEGACY:
            return LEGACY_COLUMNS, iter(reports.legacy_summary(wf)["folds"])
        return reports_tables.COLUMNS[table], reports_tables.rows(wf, table)
    if table == "equity":
        s = run.series or {}
        fee = float(run.account.fee_rate) if run.account_id else 0.0
        rows = bt_report.series_rows(ts=s.get("ts", []), mid=s.get("mid", []), equity=s.get("equity", []),
                                     position=s.get("position", []), fee_rate=fee)
        return REPLAY_COLUMNS["equity"], (dict(zip(REPLAY_COLUMNS["equity"], r, strict=True)) for r in rows)
    return REPLAY_COLUMNS["trades"], _orders(run)


def _orders(run: BacktestRun) -> Iterator[dict]:
    for o in selectors.backtest_orders(run=run, limit=None):
        yield {"ts_ms": datetime_to_ms(o.ts_event), "side": o.side, "purpose": o.purpose, "order_type": o.order_type,
               "quantity": float(o.quantity), "filled_quantity": float(o.filled_quantity),
               "average_price": None if o.average_price is None else float(o.average_price), "status": o.status,
               "reason": o.reject_reason, "client_order_id": o.client_order_id}


def _chunks(rows: Iterable[dict]) -> Iterator[list[dict]]:
    it = iter(rows)
    while chunk := list(itertools.islice(it, CHUNK_ROWS)):
        yield chunk


def csv_stream(columns: tuple[str, ...], rows: Iterable[dict]) -> Iterator[str]:
    """CSV text blocks: the header, then CHUNK_ROWS rows per block (None as an empty field)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    yield out.getvalue()
    for chunk in _chunks(rows):
        out.seek(0)
        out.truncate()
        writer.writerows([["" if r.get(c) is None else r.get(c) for c in columns] for r in chunk])
        yield out.getvalue()


def schema(columns: tuple[str, ...]) -> pa.Schema:
    """The Parquet schema of a table (types by column name: STRINGS, INTEGERS, BOOLEANS, else double)."""
    def kind(c: str) -> pa.DataType:
        return pa.string() if c in STRINGS else pa.int64() if c in INTEGERS else pa.bool_() if c in BOOLEANS \
            else pa.float64()
    return pa.schema([(c, kind(c)) for c in columns])


def _cast(column: str, value: object) -> object:
    """``value`` as its column's Parquet type (JSON may hold 12.0 for a count, 3 for a double)."""
    if value is None or value == "":
        return None if column not in STRINGS else value
    if column in STRINGS:
        return str(value)
    if column in INTEGERS:
        return int(value)  # type: ignore[call-overload]
    if column in BOOLEANS:
        return bool(value)
    return float(value)  # type: ignore[arg-type]


class _Sink(io.RawIOBase):
    """A write-only file that hands back what was written since the last ``drain``."""

    def __init__(self) -> None:
        self.buffer, self.position = bytearray(), 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.buffer += data
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def drain(self) -> bytes:
        data, self.buffer = bytes(self.buffer), bytearray()
        return data


def parquet_stream(columns: tuple[str, ...], rows: Iterable[dict]) -> Iterator[bytes]:
    """A Parquet file in pieces: one row group per CHUNK_ROWS rows, each yielded once written, then
    the footer. An empty table is a valid file with the schema and no rows."""
    sink, s = _Sink(), schema(columns)
    writer = pq.ParquetWriter(sink, s)
    try:
        for chunk in _chunks(rows):
            table = pa.Table.from_pylist([{c: _cast(c, r.get(c)) for c in columns} for r in chunk], schema=s)
            writer.write_table(table)
            if piece := sink.drain():
                yield piece
    finally:
        writer.close()
    yield sink.drain()
