"""``python manage.py lookahead_check [--samples N] [--training-samples M] [--seed S] [--start ISO]
[--end ISO] [--kind K ...] [--inputs-only]``: the look-ahead check (``apps.backtest.lookahead``) of
the stream, the candle store and the training window. Prints one JSON report on stdout, then a
verdict line; exit status 1 on any leak."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.backtest.management.commands.backtest import parse_utc
from apps.pipeline.bootstrap import bootstrap
from ml.backtest.lookahead import KINDS


class Command(BaseCommand):
    help = ("Look-ahead check: model inputs and decisions must not change when the stream or the candle store "
            "after a second is cut or altered, nor training samples when the history is. Exit 1 on any leak.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--samples", type=int, default=8,
                            help="cut seconds per stream and candle-store kind, stratified over the span (default 8)")
        parser.add_argument("--training-samples", type=int, default=6,
                            help="cut times of the training-window check over the whole history (default 6)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the cut points")
        parser.add_argument("--start", help="first traded second, ISO 8601 UTC")
        parser.add_argument("--end", help="last second, ISO 8601 UTC")
        parser.add_argument("--kind", action="append", choices=KINDS, help="check only this kind (repeatable)")
        parser.add_argument("--inputs-only", action="store_true",
                            help="compare the model inputs only, not the backtests' decisions (faster)")

    def handle(self, *args, **options) -> None:
        from apps.backtest.lookahead import lookahead_check

        if options["samples"] < 1 or options["training_samples"] < 1:
            raise CommandError("--samples and --training-samples must be >= 1")
        bootstrap()
        result = lookahead_check(samples=options["samples"], training_samples=options["training_samples"],
                                 seed=options["seed"], start=parse_utc(options["start"], "start"),
                                 end=parse_utc(options["end"], "end"), kinds=tuple(options["kind"] or KINDS),
                                 decisions=not options["inputs_only"], progress=lambda m: self.stderr.write(m))
        self.stdout.write(json.dumps(result, sort_keys=True, indent=1, default=str))
        checked = {c["kind"] for c in result["cuts"]} | ({"training_window"} if "training_window" in result else set())
        kinds = ", ".join(sorted(checked))
        verdict = "PASSED: no leak" if result["passed"] else f"FAILED: {result['leak_count']} leak(s) {result['by_kind']}"
        self.stdout.write(f"lookahead_check {verdict} over {len(result['cuts'])} cut(s) ({kinds})")
        if not result["passed"]:
            raise SystemExit(1)
