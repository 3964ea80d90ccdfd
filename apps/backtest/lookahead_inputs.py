"""The model inputs of a backtest, second by second, for the look-ahead check; and the candle store
altered after a cut second, inside a transaction that is always rolled back.

:func:`input_replay` drives the pipeline's own engine (``apps.pipeline.engine.Engine``: its market
step, ring warm-up from the candle store, roll-ups and store backfills, and its input builder) over
the recorded session and yields each second's BaseDataInput with the structural check of the
rings it was cut from (``ml.backtest.lookahead.ring_leaks``). Nothing is stored and no model runs.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import DecimalField, ExpressionWrapper, F, Value
from django.db.models.functions import Mod

from apps.market.convert import ms_to_datetime
from apps.market.models import Candle, Instrument
from ml.backtest.lookahead import Leak, ring_leaks
from ml.features.base_input import BaseDataInput
from ml.features.rings import TIMEFRAME_MS

logger = logging.getLogger(__name__)


def recordings_for(params: dict | None) -> dict[str, list[Path]]:
    """The recordings a backtest with ``params`` replays: ``params["recordings"]`` grouped by symbol,
    else the default 2024-08-08/09 spot session. Raises FileNotFoundError for a missing file."""
    from apps.pipeline.runner import default_recordings, recordings_from_paths

    paths = (params or {}).get("recordings")
    return recordings_from_paths(paths) if paths else default_recordings()


def _rings_newest(engine) -> dict[str, tuple[int | None, int]]:
    """ring name ("ETHUSDT/1h", "ETHUSDT/cob") -> (open time of its newest row in ms, period ms)."""
    newest = {f"{symbol}/{tf}": (ring.last_time, TIMEFRAME_MS[tf])
              for symbol, rings in engine.rings.items() for tf, ring in rings.items()}
    newest.update({f"{symbol}/cob": (ring.last_time, TIMEFRAME_MS["1s"]) for symbol, ring in engine.frame_rings.items()})
    return newest


def input_replay(*, end_ms: int | None = None, params: dict | None = None,
                 input_hook=None) -> Iterator[tuple[int, BaseDataInput, list[Leak]]]:
    """(ts ms, BaseDataInput at the close of ts, structural leaks at ts) for every second of the
    recorded session up to ``end_ms`` (None: its end), in order.

    The engine is the backtest's (the recordings parsed once, ``ml.backtest.replay_cache``); its
    storage buffers and drops the market rows (``BufferedStorage``); no account trades. Inputs are
    built without the derived indicators and pivots (they are functions of the components).
    ``input_hook(inputs, next_second)`` (tests: a deliberately leaky feature, as in
    ``apps.backtest.services.backtest_run``) receives the next second of the truncated session, or
    None at its end. Raises what the engine raises (e.g. ValueError for an unconfigured symbol)."""
    from apps.pipeline.engine import Engine
    from apps.pipeline.stages.storage import BufferedStorage
    from ml.backtest.replay_cache import replay_venue

    recordings = recordings_for(params)
    venue = replay_venue(recordings, Path(settings.GOGO_VAR_DIR) / "cache")
    engine = Engine(recordings=recordings, accounts=[], store_inputs=False, replay_venue=venue)
    engine.use_storage(BufferedStorage())
    seconds = (s for s in engine.session.seconds() if end_ms is None or s.ts <= end_ms)
    upcoming = next(seconds, None)
    while upcoming is not None:
        second, upcoming = upcoming, next(seconds, None)
        if not engine.started:
            engine.start(second.ts)
        engine.market_step(second)
        if input_hook is not None:
            engine.input_hook = lambda inputs, nxt=upcoming: input_hook(inputs, nxt)
        inputs = engine.input_builder.build(second.ts, derived=False)
        yield second.ts, inputs, ring_leaks(second.ts, _rings_newest(engine))


class _RollBack(Exception):
    """Raised to roll the altered candle store back."""


def _factor(base: str, spread: str, prime: int, signed: bool) -> ExpressionWrapper:
    """A per-row factor drawn from the row's id (stable, pseudo-random, on Postgres and SQLite):
    ``1 + sign * (base + spread * ((id * prime) mod 1000) / 1000)``, sign +1 or -1 by the id's parity
    when ``signed``, else +1."""
    size = Value(Decimal(base)) + Value(Decimal(spread) / 1000) * Mod(F("id") * prime, 1000)
    sign = Value(1) - Value(2) * Mod(F("id"), 2) if signed else Value(1)
    return ExpressionWrapper(Value(Decimal(1)) + sign * size, output_field=DecimalField(max_digits=12, decimal_places=8))


@contextmanager
def candle_store_altered_after(*, cut_ms: int, instruments: list[Instrument]) -> Iterator[int]:
    """Inside: every stored candle of ``instruments`` whose period closes after the end of second
    ``cut_ms`` (``open_time + period > cut_ms + 1000``, every timeframe) altered: prices scaled
    by a per-row factor of ±[0.5%, 1.5%] (sign and size drawn from the row id, so no two
    neighbours move alike and ratios between future bars change too), volume by [1.2, 1.8].
    Yields the number of rows altered. Everything, including what the caller writes inside, is
    rolled back on exit: other processes never see the altered rows (Postgres: read committed)."""
    price, volume = _factor("0.005", "0.010", 7919, signed=True), _factor("0.2", "0.6", 104729, signed=False)
    try:
        with transaction.atomic():
            altered = 0
            for tf, period in TIMEFRAME_MS.items():
                altered += Candle.objects.filter(
                    instrument__in=instruments, timeframe=tf, open_time__gt=ms_to_datetime(cut_ms + 1000 - period),
                ).update(open=F("open") * price, high=F("high") * price, low=F("low") * price,
                         close=F("close") * price, volume=F("volume") * volume)
            logger.info("look-ahead check: %d stored candles closing after %d altered (rolled back after)",
                        altered, cut_ms + 1000)
            yield altered
            raise _RollBack
    except _RollBack:
        pass
