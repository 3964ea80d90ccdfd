"""Reads of annotations, and the market data the annotation page draws them on."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Max, Min, QuerySet

from apps.annotations.models import Annotation
from apps.market.models import Candle, CobFrame, Instrument

logger = logging.getLogger(__name__)

TIMEFRAME_MS = {"1s": 1_000, "1m": 60_000, "1h": 3_600_000}
MAX_CANDLES = 5000  # per request: 83 min of 1 s candles, 3.5 days of 1 m, 208 days of 1 h
MAX_HEATMAP_FRAMES = 7200  # two hours of COB frames; a longer range shows candles only
HEATMAP_ROWS = 900  # rows sent to the browser (every k-th second when the range is longer)
MAX_HALF_BUCKETS = 120


class RangeError(ValueError):
    """A chart request the page cannot draw; ``field`` names the parameter to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def annotation_list(*, instrument: Instrument | None = None, owner=None, start: datetime | None = None,
                    end: datetime | None = None) -> QuerySet[Annotation]:
    """Annotations with ``start <= entry_time < end`` (each bound optional), oldest entry first."""
    qs = Annotation.objects.select_related("instrument", "owner")
    if instrument is not None:
        qs = qs.filter(instrument=instrument)
    if owner is not None:
        qs = qs.filter(owner=owner)
    if start is not None:
        qs = qs.filter(entry_time__gte=start)
    if end is not None:
        qs = qs.filter(entry_time__lt=end)
    return qs.order_by("entry_time", "pk")


def annotation_list_overlapping(*, instrument: Instrument, start: datetime, end: datetime) -> QuerySet[Annotation]:
    """Every user's annotations of ``instrument`` whose [entry, exit] overlaps [start, end), oldest first."""
    return (Annotation.objects.select_related("instrument", "owner")
            .filter(instrument=instrument, entry_time__lt=end, exit_time__gt=start).order_by("entry_time", "pk"))


def annotation_payload(annotation: Annotation) -> dict:
    """The JSON shape of one annotation (page, websocket): times in ms since the epoch (UTC),
    prices USD as floats, ``return_pct`` the trade's return in its direction in percent."""
    return {
        "id": annotation.pk, "instrument": annotation.instrument_id, "symbol": annotation.instrument.symbol,
        "owner": annotation.owner_id, "owner_name": annotation.owner.get_username(), "side": annotation.side,
        "entry_time": _ms(annotation.entry_time), "entry_price": float(annotation.entry_price),
        "exit_time": _ms(annotation.exit_time), "exit_price": float(annotation.exit_price),
        "notes": annotation.notes, "return_pct": round(annotation.return_fraction * 100, 4),
        "updated_at": _ms(annotation.updated_at) if annotation.updated_at else None,
    }


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


@dataclass(frozen=True)
class ChartRange:
    """The range a page opens with: [start, end) UTC and the timeframe to draw it in."""

    start: datetime
    end: datetime
    timeframe: str


def annotation_default_range(*, instrument: Instrument) -> ChartRange:
    """The recorded session's range of the stored candles: the stored 1 s candles (which only a
    replayed or live session writes), at most the last two hours of them; with none, the six hours
    up to the newest 1 m candle; with no candle at all, the last hour before now."""
    seconds = Candle.objects.filter(instrument=instrument, timeframe="1s").aggregate(first=Min("open_time"),
                                                                                     last=Max("open_time"))
    if seconds["last"] is not None:
        end = seconds["last"] + timedelta(seconds=1)
        start = max(seconds["first"], end - timedelta(hours=2))
        span_s = (end - start).total_seconds()
        return ChartRange(start, end, "1s" if span_s <= MAX_CANDLES else "1m")
    newest = (Candle.objects.filter(instrument=instrument, timeframe="1m").order_by("-open_time")
              .values_list("open_time", flat=True).first())
    if newest is not None:
        end = newest + timedelta(minutes=1)
        return ChartRange(end - timedelta(hours=6), end, "1m")
    from django.utils import timezone

    end = timezone.now().replace(microsecond=0)
    return ChartRange(end - timedelta(hours=1), end, "1m")


def annotation_chart_data(*, instrument: Instrument, timeframe: str, start: datetime, end: datetime) -> dict:
    """Candles and the COB heatmap of ``instrument`` in [start, end), for the annotation page.

    Returns ``{"candles": [{t, o, h, l, c, v}] (t = open time, ms), "heatmap": {...} | None,
    "heatmap_note": str}``. The heatmap is ``ml.market.heatmap.heatmap_matrix`` over the stored
    frames, widened so every second's mid stays inside the price axis: ``ts`` (T,) ms,
    ``price`` (B,) lower bucket edges USD, ``bucket_width`` USD, ``imbalance`` (T, B) in [-1, 1]
    and ``volume`` (T, B) USD with null where unknown, ``mid`` (T,) USD; T <= 900 (every k-th second).

    Raises:
        RangeError: unknown timeframe, end not after start, or more than MAX_CANDLES candles.
    """
    if timeframe not in TIMEFRAME_MS:
        raise RangeError("timeframe", f"must be one of {', '.join(TIMEFRAME_MS)}, got {timeframe!r}")
    if end <= start:
        raise RangeError("end", "must be after start")
    rows = Candle.objects.filter(instrument=instrument, timeframe=timeframe, open_time__gte=start, open_time__lt=end)
    count = rows.count()
    if count > MAX_CANDLES:
        raise RangeError("timeframe", f"{count} {timeframe} candles in the range, at most {MAX_CANDLES}: "
                                      "choose a coarser timeframe or a shorter range")
    candles = [{"t": _ms(c.open_time), "o": float(c.open), "h": float(c.high), "l": float(c.low), "c": float(c.close),
                "v": float(c.volume)} for c in rows.order_by("open_time")]
    heatmap, note = _heatmap(instrument, start, end)
    return {"candles": candles, "heatmap": heatmap, "heatmap_note": note}


def _heatmap(instrument: Instrument, start: datetime, end: datetime) -> tuple[dict | None, str]:
    import numpy as np

    from apps.market.selectors import cob_frame_event
    from ml.market.heatmap import heatmap_matrix

    rows = CobFrame.objects.filter(instrument=instrument, ts__gte=start, ts__lt=end)
    count = rows.count()
    if count == 0:
        return None, "No order-book frames stored in this range (start a replay or a live stream to record them)."
    if count > MAX_HEATMAP_FRAMES:
        return None, f"{count} order-book frames in this range: narrow it to two hours or less to see the heatmap."
    frames = [cob_frame_event(instrument.symbol, r) for r in rows.order_by("ts")]
    width = frames[-1].bucket_width
    frames = [f for f in frames if f.bucket_width == width]  # a changed bucket width starts a new grid
    center = math.floor(frames[-1].mid / width)
    reach = max(abs(math.floor(f.mid / width) - center) for f in frames)
    half = min(MAX_HALF_BUCKETS, reach + frames[-1].n_buckets)
    window_s = (frames[-1].ts - frames[0].ts) // 1000 + 1
    m = heatmap_matrix(frames, window_s=window_s, n_buckets=half)
    step = max(1, math.ceil(len(m.ts) / HEATMAP_ROWS))

    def clean(a: np.ndarray) -> list:
        return np.where(np.isnan(a), None, np.round(a, 4)).tolist()

    return {
        "ts": m.ts[::step].tolist(), "price": m.price.tolist(), "bucket_width": m.bucket_width,
        "imbalance": clean(m.imbalance[::step]), "volume": clean(m.volume[::step]), "mid": clean(m.mid[::step]),
        "step_s": step,
    }, ""
