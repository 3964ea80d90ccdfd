"""Candle backfill through the venue's REST klines: holes after a stream gap, and history at start-up.

Candles are fetched with ccxt (``apps.market.venues.ccxt_rest.BinanceRest``; Binance spot
``GET /api/v3/klines`` serves 1s/1m/1h/1d, USD-M no 1s) and written with
:func:`apps.market.services.candle_upsert_many` (idempotent on instrument, timeframe, open time),
so a backfill can be re-run at will. Every hole becomes a ``DataGap`` row, ``backfilled=True``
once each of its candles was fetched; a hole the venue cannot fill (fewer candles than periods,
or a venue error) stays ``backfilled=False`` and is never interpolated.
"""
from __future__ import annotations

import logging

from apps.market import selectors, services
from apps.market.models import DataGap, Instrument
from apps.market.venues.ccxt_rest import BinanceRest, VenueError
from ml.market.candles import TIMEFRAME_MS

logger = logging.getLogger(__name__)

MAX_CANDLES_PER_REQUEST = 1000  # Binance klines "limit" maximum
START_TIMEFRAMES = ("1m", "1h", "1d")
_rest_clients: dict[str, BinanceRest] = {}


def venue_rest(venue: str) -> BinanceRest:
    """A REST client of ``venue`` ("binance" | "binanceusdm") on the configured endpoint
    (``GOGO_BINANCE_REST_URL`` ...), one per process."""
    from apps.market.venues.live import VenueEndpoints

    if venue not in _rest_clients:
        _rest_clients[venue] = BinanceRest(venue=venue, rest_url=VenueEndpoints.from_settings(venue).rest_url)
    return _rest_clients[venue]


def candle_backfill(*, instrument: Instrument, timeframe: str, start_ms: int, end_ms: int, rest: BinanceRest | None = None,
                    cause: str = DataGap.Cause.MISSING_CANDLES, detail: str = "") -> int:
    """Fetch and store the ``timeframe`` candles with open time in ``[start_ms, end_ms)`` (ms, UTC).

    ``start_ms`` is rounded up to the timeframe's grid. ``end_ms`` must not be after the venue's
    now (a still-open candle would be stored as final). Records the hole as a ``DataGap``
    (``cause``, ``ts_event=start``, ``ts_end=end``), ``backfilled`` when every period came back.

    Returns candles written. Raises ValueError for an unknown timeframe or an empty range, and
    the venue's VenueTemporaryError / VenuePermanentError after recording the gap unfilled.
    """
    period = TIMEFRAME_MS.get(timeframe)
    if period is None:
        raise ValueError(f"timeframe must be one of {sorted(TIMEFRAME_MS)}, got {timeframe!r}")
    start = -(-start_ms // period) * period
    if end_ms <= start:
        raise ValueError(f"empty backfill range [{start_ms}, {end_ms}) for {timeframe}")
    expected = -(-(end_ms - start) // period)
    rest = rest or venue_rest(instrument.venue)
    what = f"{timeframe} candles {detail}".strip()
    try:
        candles = _fetch(rest, instrument.symbol, timeframe, start, end_ms)
    except VenueError as exc:
        services.data_gap_upsert(instrument=instrument, cause=cause, ts_event_ms=start, ts_end_ms=end_ms,
                                 detail=f"{what}: not backfilled: {exc}")
        raise
    written = services.candle_upsert_many(instrument=instrument, candles=candles)
    filled = len({c.open_time for c in candles}) == expected
    services.data_gap_upsert(instrument=instrument, cause=cause, ts_event_ms=start, ts_end_ms=end_ms,
                             detail=f"{what}: {len(candles)} of {expected} fetched", backfilled=filled)
    if not filled:
        logger.warning("%s: %s [%d, %d): the venue returned %d of %d candles; the rest stays a gap",
                       instrument, timeframe, start, end_ms, len(candles), expected)
    return written


def candle_backfill_on_start(*, instrument: Instrument, now_ms: int, count: int = 600, rest: BinanceRest | None = None,
                             timeframes: tuple[str, ...] = START_TIMEFRAMES) -> dict[str, int]:
    """Make sure the last ``count`` closed candles of each timeframe (1m, 1h, 1d) before ``now_ms``
    are stored: fetch from the first missing one on. Returns candles written per timeframe.

    Nothing is fetched for a timeframe already complete (a restart costs a count query). Periods
    the venue does not return stay missing and are recorded as one ``DataGap`` (missing candles,
    not backfilled). Raises the venue's errors (VenueTemporaryError / VenuePermanentError).
    """
    written: dict[str, int] = {}
    for timeframe in timeframes:
        period = TIMEFRAME_MS[timeframe]
        end = now_ms - now_ms % period  # the open period is not closed yet
        start = end - count * period
        have = selectors.candle_open_times(instrument=instrument, timeframe=timeframe, start_ms=start, end_ms=end)
        missing = [t for t in range(start, end, period) if t not in have]
        if not missing:
            written[timeframe] = 0
            continue
        rest = rest or venue_rest(instrument.venue)
        candles = _fetch(rest, instrument.symbol, timeframe, missing[0], end)
        written[timeframe] = services.candle_upsert_many(instrument=instrument, candles=candles)
        got = {c.open_time for c in candles}
        still = [t for t in missing if t not in got]
        if still:
            services.data_gap_upsert(instrument=instrument, cause=DataGap.Cause.MISSING_CANDLES, ts_event_ms=still[0],
                                     ts_end_ms=still[-1] + period,
                                     detail=f"{timeframe} candles at start-up: {len(still)} not available")
        logger.info("%s: start-up backfill %s: %d fetched, %d missing", instrument, timeframe, len(candles), len(still))
    return written


def _fetch(rest: BinanceRest, symbol: str, timeframe: str, start: int, end: int) -> list:
    """Every candle with open time in ``[start, end)``, paging by ``MAX_CANDLES_PER_REQUEST``."""
    period = TIMEFRAME_MS[timeframe]
    out = []
    cursor = start
    while cursor < end:
        batch = [c for c in rest.candles(symbol, timeframe, start_ms=cursor, end_ms=end - 1,
                                         limit=MAX_CANDLES_PER_REQUEST) if cursor <= c.open_time < end]
        if not batch:
            break
        out.extend(batch)
        cursor = batch[-1].open_time + period
    return out
