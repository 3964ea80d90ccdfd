"""``python manage.py import_archive DIR [--symbol ETHUSDT]``: load Binance data dumps into candles."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.market.archive import FileReport, archive_import
from apps.market.models import Instrument
from apps.market.selectors import instrument_get

MAX_ERRORS_SHOWN = 5


class Command(BaseCommand):
    help = ("Import Binance public data dumps (SYMBOL-1m-YYYY-MM-DD.zip klines, SYMBOL-aggTrades-...zip as 1s "
            "candles) from a directory; prints one line per file.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory", help="folder holding the .zip / .csv dumps")
        parser.add_argument("--symbol", help="only this instrument's files, e.g. ETHUSDT")
        parser.add_argument("--venue", default=Instrument.Venue.BINANCE, choices=Instrument.Venue.values,
                            help="venue of the instruments that receive the candles (default: binance spot)")

    def handle(self, *args, **options) -> None:
        instrument = None
        if options["symbol"]:
            try:
                instrument = instrument_get(symbol=options["symbol"].upper(), venue=options["venue"])
            except Instrument.DoesNotExist as exc:
                raise CommandError(str(exc)) from exc
        try:
            report = archive_import(directory=options["directory"], instrument=instrument, venue=options["venue"],
                                    progress=self._progress)
        except NotADirectoryError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{len(report.files)} files: {report.candles} candles written, "
                          f"{report.malformed} malformed rows, {len(report.skipped)} files skipped")

    def _progress(self, index: int, total: int, f: FileReport) -> None:
        head = f"[{index}/{total}] {f.name}"
        if f.skipped:
            self.stdout.write(self.style.WARNING(f"{head}: skipped ({f.skipped})"))
            return
        self.stdout.write(f"{head}: {f.rows} rows, {f.candles} {f.timeframe} candles, {f.malformed} malformed")
        for error in f.errors[:MAX_ERRORS_SHOWN]:
            self.stdout.write(self.style.WARNING(f"    {error}"))
        if f.malformed > MAX_ERRORS_SHOWN:
            self.stdout.write(self.style.WARNING(f"    ... {f.malformed - MAX_ERRORS_SHOWN} more"))
