"""Import Binance public data dumps (data.binance.vision) into stored candles.

Kline files are upserted as they are; aggTrades files become 1 s candles (the same
``SecondCandleBuilder`` as the live pipeline). Everything goes through
``candle_upsert_many``, so re-importing a directory is harmless. Parsing is in
``ml.data.binance_archive``.
"""
from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from apps.market.models import Instrument, Timeframe
from apps.market.services import candle_upsert_many
from ml.data.binance_archive import (
    AGG_TRADES,
    ArchiveFile,
    RowError,
    candles_from_klines,
    find_archives,
    read_archive,
    second_candles_from_agg_trades,
)

logger = logging.getLogger(__name__)

STORED_TIMEFRAMES = frozenset(Timeframe.values)


@dataclass
class FileReport:
    """The outcome of one dump: rows read, malformed rows (first errors kept), candles written,
    or why the file was skipped."""

    name: str
    symbol: str
    kind: str  # "klines" or "aggTrades"
    timeframe: str  # stored timeframe ("1s" for aggTrades)
    rows: int = 0
    malformed: int = 0
    candles: int = 0
    errors: list[RowError] = field(default_factory=list)
    skipped: str = ""  # reason, empty when imported


@dataclass
class ImportReport:
    """Per-file reports of one :func:`archive_import` run, with totals."""

    files: list[FileReport] = field(default_factory=list)

    @property
    def candles(self) -> int:
        return sum(f.candles for f in self.files)

    @property
    def malformed(self) -> int:
        return sum(f.malformed for f in self.files)

    @property
    def skipped(self) -> list[FileReport]:
        return [f for f in self.files if f.skipped]


Progress = Callable[[int, int, FileReport], None]


def archive_import(*, directory: str | Path, instrument: Instrument | None = None,
                   venue: str = Instrument.Venue.BINANCE, progress: Progress | None = None) -> ImportReport:
    """Load every Binance dump in ``directory`` (not recursive) into candles.

    Args:
        directory: folder holding ``SYMBOL-<interval>-<date>.{csv,zip}`` and
            ``SYMBOL-aggTrades-<date>.{csv,zip}`` files; other files are ignored.
        instrument: only import the files of this instrument's symbol, into it. None: every
            file, each into the ``venue`` instrument of its symbol.
        venue: the venue whose instruments receive files when ``instrument`` is None (spot
            dumps: ``binance``).
        progress: called after each file with ``(index from 1, number of files, FileReport)``.

    Returns:
        an :class:`ImportReport`. A file whose symbol has no Instrument row, whose interval is not
        stored (1s, 1m, 1h, 1d are), or that cannot be read is skipped with its reason (logged);
        malformed rows are counted and listed with file and line. Never raises for file content.

    Raises:
        NotADirectoryError: ``directory`` is not a directory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"not a directory: {directory}")
    files = [f for f in find_archives(directory) if instrument is None or f.symbol == instrument.symbol]
    instruments = _instruments({f.symbol for f in files}, instrument, venue)
    report = ImportReport()
    for index, info in enumerate(files, start=1):
        file_report = _import_file(info, instruments.get(info.symbol), venue)
        report.files.append(file_report)
        if progress is not None:
            progress(index, len(files), file_report)
    logger.info("archive import from %s: %d files, %d candles, %d malformed rows, %d skipped", directory,
                len(report.files), report.candles, report.malformed, len(report.skipped))
    return report


def _instruments(symbols: set[str], instrument: Instrument | None, venue: str) -> dict[str, Instrument]:
    if instrument is not None:
        return {instrument.symbol: instrument}
    return {i.symbol: i for i in Instrument.objects.filter(venue=venue, symbol__in=symbols)}


def _import_file(info: ArchiveFile, instrument: Instrument | None, venue: str) -> FileReport:
    timeframe = "1s" if info.kind == AGG_TRADES else info.timeframe or ""
    report = FileReport(info.path.name, info.symbol, info.kind, timeframe)
    if instrument is None:
        return _skip(report, f"unknown symbol {info.symbol}: no {venue} Instrument")
    if timeframe not in STORED_TIMEFRAMES:
        return _skip(report, f"timeframe {timeframe} is not stored (only {', '.join(sorted(STORED_TIMEFRAMES))})")
    try:
        read = read_archive(info.path)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        return _skip(report, f"unreadable: {exc}")
    report.rows, report.malformed, report.errors = read.rows, read.malformed, read.errors
    candles = second_candles_from_agg_trades(read) if info.kind == AGG_TRADES else candles_from_klines(read)
    with transaction.atomic():
        report.candles = candle_upsert_many(instrument=instrument, candles=candles)
    return report


def _skip(report: FileReport, reason: str) -> FileReport:
    report.skipped = reason
    logger.warning("%s skipped: %s", report.name, reason)
    return report
