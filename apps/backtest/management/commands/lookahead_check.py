"""``python manage.py lookahead_check [--samples N] [--seed S] [--start ISO] [--end ISO]``: backtest
once, then N times with the data truncated at random seconds; report every decision that changes."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.backtest.management.commands.backtest import parse_utc
from apps.pipeline.bootstrap import bootstrap


class Command(BaseCommand):
    help = "Look-ahead check: decisions must not change when the data after them is cut off. Exit 1 on any change."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--samples", type=int, default=5, help="truncated re-runs (default 5)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the random cut points")
        parser.add_argument("--start", help="first traded second, ISO 8601 UTC")
        parser.add_argument("--end", help="last second, ISO 8601 UTC")

    def handle(self, *args, **options) -> None:
        from apps.backtest.lookahead import lookahead_check

        if options["samples"] < 1:
            raise CommandError("--samples must be >= 1")
        bootstrap()
        result = lookahead_check(samples=options["samples"], seed=options["seed"],
                                 start=parse_utc(options["start"], "start"), end=parse_utc(options["end"], "end"),
                                 progress=lambda m: self.stderr.write(m))
        self.stdout.write(json.dumps(result, sort_keys=True, indent=1))
        changed = result["changed_decisions"]
        verdict = "PASSED: no decision changed" if result["passed"] else f"FAILED: {changed} decision(s) changed"
        self.stdout.write(f"lookahead_check {verdict} over {len(result['cuts'])} truncation(s)")
        if not result["passed"]:
            raise SystemExit(1)
