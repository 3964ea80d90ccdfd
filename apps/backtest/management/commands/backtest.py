"""``python manage.py backtest [--source orderbook|candles] [--start ISO] [--end ISO] [--csv PATH]
[--path fast|per_second]`` or ``backtest --walk-forward K [--start ISO --end ISO] [--model all|cnn|transformer|dqn]
[--epochs N] [--window-days D] [--scheme expanding|rolling] [--margin-bps B] [--json]``:
the pipeline over the recorded session at max speed, then the report and the order-log hash; or
the purged walk-forward over the candle history (``apps.backtest.walk_forward``), ending with one
JSON object (docs/evaluation.md)."""
from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.pipeline.bootstrap import bootstrap


def parse_utc(value: str | None, field: str) -> datetime | None:
    """An ISO 8601 datetime (naive is read as UTC). Raises CommandError naming ``field``."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--{field}: not an ISO 8601 datetime: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Backtest the pipeline on recorded data; prints a progress bar, the report (JSON) and the order-log hash."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--source", choices=["orderbook", "candles"], default="orderbook")
        parser.add_argument("--start", help="first traded second, ISO 8601 UTC (default: session start)")
        parser.add_argument("--end", help="last second, ISO 8601 UTC (default: session end)")
        parser.add_argument("--recording", nargs="+", metavar="PATH", help="stream files (default: 2024-08-08/09 spot)")
        parser.add_argument("--csv", metavar="PATH", help="write the per-second series as CSV")
        parser.add_argument("--walk-forward", type=int, metavar="K", dest="walk_forward",
                            help="walk-forward over the candle history instead: K folds, train on window k, "
                                 "test on window k+1 (--start/--end bound the span)")
        parser.add_argument("--model", choices=["all", "cnn", "transformer", "dqn"], default="all",
                            help="walk-forward models: all = the cascade cnn -> transformer -> dqn (default)")
        parser.add_argument("--epochs", type=int, default=6, help="walk-forward maximum epochs per model and fold "
                                                                  "(early stopping on the validation split)")
        parser.add_argument("--window-days", type=float, default=1.0, dest="window_days",
                            help="walk-forward window length when --start is not given")
        parser.add_argument("--scheme", choices=["expanding", "rolling"], default="expanding")
        parser.add_argument("--margin-bps", type=float, default=2.0, dest="margin_bps",
                            help="trade only when the expected net return exceeds this margin (bps)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--search", type=int, default=0, metavar="N",
                            help="walk-forward: Optuna search of N trials; stores each, saves the best as the preset")
        parser.add_argument("--preset", choices=["best"], help="walk-forward: start from the saved best configuration")
        parser.add_argument("--json", action="store_true",
                            help="walk-forward: print only the report as one JSON object")
        parser.add_argument("--path", choices=["fast", "per_second"], default="fast",
                            help="fast: chunked replay, batch inference, buffered writes (default); "
                                 "per_second: the live engine loop (same order log, slower)")

    def handle(self, *args, **options) -> None:
        from apps.backtest.services import BacktestError, backtest_csv, backtest_run

        start, end = parse_utc(options["start"], "start"), parse_utc(options["end"], "end")
        params = {"recordings": options["recording"]} if options["recording"] else {}
        params["path"] = options["path"]
        source = options["source"]
        if options["walk_forward"] is not None:
            return self._walk_forward(start, end, options)
        bootstrap(progress=self._bar)
        started = time.perf_counter()
        try:
            run = backtest_run(source=source, start=start, end=end, params=params, progress=self._bar)
        except (BacktestError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        wall = time.perf_counter() - started
        self.stderr.write("")
        decisions = run.summary.get("decisions", 0)
        report = {"run": run.pk, "source": run.source, **run.summary, "order_log_sha256": run.order_log_sha256,
                  "wall_seconds": round(wall, 2), "decisions_per_second": round(decisions / wall, 1) if wall else None}
        if options["csv"]:
            Path(options["csv"]).write_text(backtest_csv(run=run))
            report["csv"] = options["csv"]
        self.stdout.write(json.dumps(report, sort_keys=True, indent=1))
        self.stdout.write(f"order_log_sha256: {run.order_log_sha256}")

    def _walk_forward(self, start, end, options) -> None:
        from apps.backtest.services import BacktestError, backtest_csv, backtest_run

        params = {"folds": options["walk_forward"], "model": options["model"], "epochs": options["epochs"],
                  "window_days": options["window_days"], "scheme": options["scheme"],
                  "margin_bps": options["margin_bps"], "seed": options["seed"], "search_trials": options["search"],
                  "preset": options["preset"] or ""}
        try:
            run = backtest_run(source="walk_forward", start=start, end=end, params=params, progress=self._bar)
        except (BacktestError, FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write("")
        if options["csv"]:
            Path(options["csv"]).write_text(backtest_csv(run=run))
        report = {"run": run.pk, **run.summary["walk_forward"]}
        if not options["json"]:
            self.stdout.write(f"walk_forward_sha256: {run.summary['sha256']}")
        self.stdout.write(json.dumps(report, sort_keys=True, default=str))

    def _bar(self, fraction: float, message: str) -> None:
        self.stderr.write(f"\r[{'#' * int(fraction * 30):<30}] {fraction:4.0%} {message}", ending="")
        self.stderr.flush()
