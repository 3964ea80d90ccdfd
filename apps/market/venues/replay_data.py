"""Recorded Binance session data for the replay server: raw frames, truth book, klines.

The replay server must send frames *exactly as recorded*, so this loader keeps each combined
stream line as text (``{"stream": ..., "data": {...}}``) and the offset of its ``data`` object
(the raw ``/ws`` payload is a slice of it, no re-serialization). Depth and trade frames are also
parsed (``ml.market.binance``) for the venue's truth book and its klines.

Ordering follows ``ml.market.replay``: each symbol's frames are stable-sorted by exchange time
(depth ``E``, trade ``T``; a ``bookTicker`` frame has no time and takes the previous frame's),
then the symbols are merged by time. The truth book starts from the recorded REST snapshot and
applies every depth diff with ``u`` above its id as the replay clock passes it, delivered to
clients or not (faults only touch delivery, as a lossy network would).
"""
from __future__ import annotations

import heapq
import io
import logging
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import orjson

from ml.market.binance import parse_message
from ml.market.errors import MalformedMessage
from ml.market.events import OrderBookDelta, OrderBookSnapshot, Trade
from ml.market.orderbook import OrderBook
from ml.market.recording import _gunzip_lines, default_data_dir

logger = logging.getLogger(__name__)

_PREFIX = '{"stream":"'
EXCHANGE_INFO_URL = "https://api.binance.com/api/v3/exchangeInfo"

# Binance kline intervals we can build from trades (3d / 1w / 1M need calendar alignment).
INTERVALS_MS = {"1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000,
                "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000,
                "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000}


@dataclass(slots=True)
class Frame:
    """One recorded stream frame. ``text[data_start:-1]`` is the raw payload (``/ws`` form)."""

    ts: int  # exchange time, ms since epoch
    symbol: str  # "ETHUSDT"
    stream: str  # "ethusdt@depth@100ms"
    text: str  # combined-stream frame, as recorded
    data_start: int
    delta: OrderBookDelta | None = None
    trade: Trade | None = None

    @property
    def raw(self) -> str:
        return self.text[self.data_start:-1]


@dataclass(slots=True)
class SymbolState:
    """Per-symbol replay state: truth book and the trades the clock has passed."""

    symbol: str
    snapshot: OrderBookSnapshot | None  # recorded REST snapshot (session start)
    trades: list[Trade] = field(default_factory=list)  # sorted by T
    trade_ts: list[int] = field(default_factory=list)
    truth: OrderBook = field(default_factory=OrderBook)
    truth_id: int | None = None
    counts: Counter[str] = field(default_factory=Counter)

    def reset(self) -> None:
        """Back to the session start: the recorded snapshot."""
        self.truth.clear()
        self.truth_id = None
        if self.snapshot is not None:
            self.truth.apply_snapshot(self.snapshot)
            self.truth_id = self.snapshot.last_update_id

    def apply(self, delta: OrderBookDelta) -> None:
        """Apply a diff the clock reached (ignored if the book already covers it)."""
        if self.truth_id is not None and delta.final_update_id > self.truth_id:
            self.truth.apply_levels(delta.bids, delta.asks)
            self.truth_id = delta.final_update_id


def load_session(recordings: dict[str, list[Path]]) -> tuple[list[Frame], dict[str, SymbolState]]:
    """Read every recording; return all frames merged in exchange time and the symbol states.

    Raises OSError if a file cannot be read; malformed lines are counted and logged.
    """
    per_symbol: list[list[Frame]] = []
    states: dict[str, SymbolState] = {}
    for symbol, paths in recordings.items():
        frames, snapshot, trades, counts = _load_symbol(symbol.upper(),
                                                        tuple(Path(p) for p in paths))
        per_symbol.append(frames)
        state = SymbolState(symbol=symbol.upper(), snapshot=snapshot, trades=trades,
                            trade_ts=[t.ts_event for t in trades], counts=Counter(counts))
        state.reset()
        states[state.symbol] = state
    # ties: symbols in the order given, then file order; the Frame itself is never compared
    ranked = [[(f.ts, i, k, f) for k, f in enumerate(frames)]
              for i, frames in enumerate(per_symbol)]
    return [entry[3] for entry in heapq.merge(*ranked)], states


@lru_cache(maxsize=8)
def _load_symbol(symbol: str, paths: tuple[Path, ...]
                 ) -> tuple[list[Frame], OrderBookSnapshot | None, list[Trade], Counter[str]]:
    """One symbol's frames sorted by time, recorded snapshot, trades, counts.

    Cached (a recording takes ~1 s to read); callers must not mutate what it returns.
    """
    counts: Counter[str] = Counter()
    frames: list[Frame] = []
    snapshot: OrderBookSnapshot | None = None
    trades: list[Trade] = []
    last_ts: int | None = None
    for path in paths:
        for line in _gunzip_lines(path, counts):
            payload = line.partition(b" ")[2]
            if not payload.strip():
                counts["malformed"] += 1
                continue
            if b"lastUpdateId" in payload[:40]:
                if snapshot is None:
                    snapshot = parse_message(payload, symbol=symbol)
                counts["snapshots"] += 1
                continue
            frame = _frame(symbol, payload.decode(), last_ts, counts)
            if frame is None:
                continue
            if frame.ts >= 0:
                last_ts = frame.ts
            frames.append(frame)
            if frame.trade is not None:
                trades.append(frame.trade)
    _fill_times(frames)
    frames.sort(key=lambda f: f.ts)  # stable
    trades.sort(key=lambda t: t.ts_event)
    if snapshot is None:
        logger.warning("%s: no REST snapshot in %s; depth endpoint will fail", symbol,
                       [p.name for p in paths])
    return frames, snapshot, trades, counts


def _frame(symbol: str, text: str, last_ts: int | None, counts: Counter[str]) -> Frame | None:
    """Parse one combined-stream line; None (counted) if malformed or another symbol's."""
    end = text.find('"', len(_PREFIX))
    stream = text[len(_PREFIX):end] if text.startswith(_PREFIX) and end > 0 else ""
    data_prefix = f'{_PREFIX}{stream}","data":'
    if not stream or not text.startswith(data_prefix) or not text.endswith("}"):
        counts["malformed"] += 1
        return None
    if stream.partition("@")[0] != symbol.lower():
        counts["other_symbol"] += 1
        return None
    frame = Frame(ts=-1 if last_ts is None else last_ts, symbol=symbol, stream=stream,
                  text=text, data_start=len(data_prefix))
    kind = stream.partition("@")[2]
    if kind != "trade" and not kind.startswith("depth"):
        counts["other_streams"] += 1  # bookTicker etc: served as recorded, timed by neighbours
        return frame
    try:
        event = parse_message(text)
    except MalformedMessage as exc:
        counts["malformed"] += 1
        logger.warning("%s: malformed frame skipped: %s", symbol, exc)
        return None
    if isinstance(event, OrderBookDelta):
        frame.delta = event
        counts["deltas"] += 1
    else:
        frame.trade = event
        counts["trades"] += 1
    frame.ts = event.ts_event
    return frame


def _fill_times(frames: list[Frame]) -> None:
    """Frames before the first timed one take the first known time."""
    first = next((f.ts for f in frames if f.ts >= 0), 0)
    for f in frames:
        if f.ts >= 0:
            break
        f.ts = first


FUTURES_EXCHANGE_INFO_URL = "https://fapi.binance.com/fapi/v1/exchangeInfo"


def load_exchange_info(data_dir: Path | None = None, market: str = "spot") -> bytes:
    """The recorded Binance spot ``GET /api/v3/exchangeInfo`` body, or with ``market="usdm"`` the
    USD-M ``GET /fapi/v1/exchangeInfo`` body (data README section 4).

    Raises FileNotFoundError if the sample is missing, LookupError if it holds no such record.
    """
    import zstandard

    name, url = (("cryptofeed_BINANCE_FUTURES.jsonl.zst", FUTURES_EXCHANGE_INFO_URL) if market == "usdm"
                 else ("cryptofeed_BINANCE.jsonl.zst", EXCHANGE_INFO_URL))
    path = (data_dir or default_data_dir()) / "ws_samples" / name
    with path.open("rb") as fh:
        reader = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(fh), encoding="utf-8")
        for line in reader:
            if '"http"' not in line[:40]:
                continue
            record = orjson.loads(line)
            if record.get("t") == "http" and record.get("url") == url:
                return record["data"].encode()
    raise LookupError(f"{path}: no recorded {url} response")


def book_levels(book: OrderBook, limit: int) -> dict[str, list[list[str]]]:
    """Top ``limit`` levels a side as Binance decimal strings (8 decimals)."""
    return {side + "s": [[f"{p:.8f}", f"{q:.8f}"] for p, q in book.levels(side, limit)]
            for side in ("bid", "ask")}


HISTORY_INTERVALS = ("1m", "1h", "1d")  # intervals with recorded history files (data README s. 3)


@dataclass(frozen=True, slots=True)
class History:
    """Recorded candles of one symbol and interval (``ml.data.history`` files), sorted."""

    open_times: list[int]
    rows: list[tuple[float, float, float, float, float]]  # open, high, low, close, volume


@lru_cache(maxsize=16)
def load_history(data_dir: Path, symbol: str, interval: str) -> History | None:
    """The recorded 1m/1h/1d Binance spot candles of ``symbol`` (None for another interval or
    symbol without a file). Cached: a 1m file takes ~0.1 s to read."""
    from ml.data.history import history_files, load_ohlcv_csv

    if interval not in HISTORY_INTERVALS:
        return None
    try:
        path = history_files(data_dir, symbol)[interval]
    except FileNotFoundError:
        return None
    frame = load_ohlcv_csv(path)
    cols = [frame[c].tolist() for c in ("open", "high", "low", "close", "volume")]
    return History(open_times=frame["open_time"].astype("int64").tolist(), rows=list(zip(*cols, strict=True)))


def build_klines(state: SymbolState, clock_ms: int, interval_ms: int, start: int | None,
                 end: int | None, limit: int, history: History | None = None) -> list[list]:
    """Binance kline rows from the trades with ``T <= clock_ms`` (and recorded history).

    Row: ``[open_time, open, high, low, close, volume, close_time, quote_volume, trades,
    taker_buy_base, taker_buy_quote, "0"]`` (ms; decimal strings). Buckets run from the first
    trade's to the one holding ``clock_ms`` (the open kline); a bucket with no trade repeats the
    previous close with zero volume, as Binance does. ``start``/``end`` filter open times; with
    ``start`` the first ``limit`` rows are returned, else the last ``limit``.

    With ``history`` (1m/1h/1d files), periods that begin before the recording's first trade come
    from the history rows instead (trades cannot rebuild them), only once closed at ``clock_ms``
    (no future data); their quote volume, trade count and taker fields are unknown and sent as 0.
    """
    rows = _history_rows(state, clock_ms, interval_ms, start, end, limit, history)
    trades = state.trades[:bisect_right(state.trade_ts, clock_ms)]
    from_start = start is not None
    if not trades:
        return rows[:limit] if from_start else rows[-limit:]
    first = trades[0].ts_event // interval_ms * interval_ms
    if history is not None and first < trades[0].ts_event:
        start = max(start or 0, first + interval_ms)  # the partial first period came from history
    last = clock_ms // interval_ms * interval_ms
    i, close = 0, Decimal(str(trades[0].price))
    for open_time in range(first, last + 1, interval_ms):
        bucket = []
        while i < len(trades) and trades[i].ts_event < open_time + interval_ms:
            bucket.append(trades[i])
            i += 1
        if (start is not None and open_time < start) or (end is not None and open_time > end):
            if bucket:
                close = Decimal(str(bucket[-1].price))
            continue
        rows.append(_kline_row(open_time, interval_ms, bucket, close))
        close = Decimal(rows[-1][4])
    return rows[:limit] if from_start else rows[-limit:]


def _kline_row(open_time: int, interval_ms: int, bucket: list[Trade], prev_close: Decimal
               ) -> list:
    prices = [Decimal(str(t.price)) for t in bucket] or [prev_close]
    sizes = [Decimal(str(t.size)) for t in bucket]
    quote = [p * q for p, q in zip(prices, sizes, strict=False)]
    taker = [k for k, t in enumerate(bucket) if not t.is_buyer_maker]
    return [open_time, f"{prices[0]:.8f}", f"{max(prices):.8f}", f"{min(prices):.8f}",
            f"{prices[-1]:.8f}", f"{sum(sizes, Decimal(0)):.8f}", open_time + interval_ms - 1,
            f"{sum(quote, Decimal(0)):.8f}", len(bucket),
            f"{sum((sizes[k] for k in taker), Decimal(0)):.8f}",
            f"{sum((quote[k] for k in taker), Decimal(0)):.8f}", "0"]


def _history_rows(state: SymbolState, clock_ms: int, interval_ms: int, start: int | None, end: int | None,
                  limit: int, history: History | None) -> list[list]:
    """History kline rows for the periods before the recording (see :func:`build_klines`)."""
    if history is None or not state.trades:
        return []
    first_trade = state.trades[0].ts_event
    cutoff = first_trade // interval_ms * interval_ms  # the period holding the first trade...
    if cutoff < first_trade:
        cutoff += interval_ms  # ...comes from history too when trades miss its beginning
    last_open = min(cutoff - interval_ms, clock_ms - interval_ms)  # closed at the clock
    if end is not None:
        last_open = min(last_open, end)
    times = history.open_times
    lo = bisect_left(times, start) if start is not None else 0
    hi = bisect_right(times, last_open)
    lo, hi = (lo, min(hi, lo + limit)) if start is not None else (max(lo, hi - limit), hi)
    return [[times[k], *(f"{v:.8f}" for v in history.rows[k]), times[k] + interval_ms - 1,
             "0", 0, "0", "0", "0"] for k in range(lo, hi)]
