"""``python manage.py replay --speed max``: the whole pipeline over recorded streams, headless."""
from __future__ import annotations

import hashlib
import json
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.pipeline import control
from apps.pipeline.bootstrap import bootstrap
from apps.trading.models import Order
from apps.trading.services import account_ensure_paper

REPLAY_USER = "gogo-replay"


class Command(BaseCommand):
    help = "Replay recorded Binance streams through the whole pipeline and print a JSON summary."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--speed", default="max", help="'max' or a multiple of real time (1 = real time)")
        parser.add_argument("--recording", nargs="+", metavar="PATH",
                            help="stream files, one or more per symbol in order (default: 2024-08-08/09 spot)")
        parser.add_argument("--sync-rule", choices=["auto", "spot", "futures"], default="auto",
                            help="Binance sync rule; auto: futures when a path is under binance_usdm")
        parser.add_argument("--publish", action="store_true", help="publish updates to the dashboard group")

    def handle(self, *args, **options) -> None:
        from apps.pipeline.engine import Engine
        from apps.pipeline.runner import default_recordings, publish_blocking, recordings_from_paths, run_blocking

        try:
            speed = control.parse_speed(options["speed"])
            recordings = recordings_from_paths(options["recording"]) if options["recording"] else default_recordings()
        except (ValueError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        rule = options["sync_rule"]
        if rule == "auto":
            rule = "futures" if any("usdm" in str(p) for ps in recordings.values() for p in ps) else "spot"
        bootstrap(progress=self._progress)
        user, _ = get_user_model().objects.get_or_create(username=REPLAY_USER, defaults={"is_active": False})
        account = account_ensure_paper(owner=user, name="paper")
        started = time.perf_counter()
        try:
            engine = Engine(recordings=recordings, sync_rule=rule, accounts=[account],
                            flush_every=1 if speed else 60)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        summary = run_blocking(engine, speed=speed, publish=publish_blocking if options["publish"] else None)
        wall = time.perf_counter() - started
        orders = Order.objects.filter(account=account, ts_event__gte=engine_start(engine)).order_by("ts_event", "client_order_id")
        summary["order_log_sha256"] = hashlib.sha256(
            "\n".join(f"{o.client_order_id} {o.side} {o.quantity} {o.status} {o.average_price}" for o in orders).encode()
        ).hexdigest()
        summary["sync_rule"] = rule
        summary["wall_seconds"] = round(wall, 2)
        decisions = sum(i["decisions"] for i in summary["instruments"].values())
        summary["decisions_per_second"] = round(decisions / wall, 1) if wall else None
        self.stdout.write(json.dumps(summary, sort_keys=True))

    def _progress(self, fraction: float, message: str) -> None:
        self.stderr.write(f"[{'#' * int(fraction * 30):<30}] {fraction:4.0%} {message}")


def engine_start(engine):
    from apps.market.convert import ms_to_datetime

    return ms_to_datetime(engine.first_ts or 0)
