"""Read recorded Binance stream files (``shared/data/orderbook/**``, data README section 1).

File format: gzip text, one message per line, ``<local receive timestamp> <json>``. The local
timestamp is an integer in ns (2024 files) or µs (``*.dat.gz``, 2023 files); we normalize to ns.
The recorder's clock is only good for arrival order (the 2024 files run ~1.27 s behind the
exchange), so use the events' ``ts_event`` for time.
"""
from __future__ import annotations

import logging
import os
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from ml.market.binance import MarketEvent, parse_message
from ml.market.errors import MalformedMessage

logger = logging.getLogger(__name__)

SPOT_SESSION_SYMBOLS = ("ETHUSDT", "BTCUSDT")
SPOT_SESSION_DAYS = ("20240808", "20240809")

_STREAM_PREFIX = b'{"stream":"'


def default_data_dir() -> Path:
    """The shared data directory: ``$GOGO_DATA_DIR`` if set, else ``<repo root>/../shared/data``."""
    env = os.environ.get("GOGO_DATA_DIR")
    if env:
        return Path(env)
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "data"


def default_spot_session(data_dir: str | Path | None = None) -> dict[str, list[Path]]:
    """Recorded Binance spot run of ETHUSDT and BTCUSDT, 2024-08-08 23:54 → 2024-08-09 00:05 UTC.

    Returns ``{"ETHUSDT": [.../ethusdt_20240808.gz, .../ethusdt_20240809.gz], "BTCUSDT": [...]}``
    (each list is one stream, to be read in order). Raises FileNotFoundError naming a missing file.
    """
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    session: dict[str, list[Path]] = {}
    for symbol in SPOT_SESSION_SYMBOLS:
        paths = [root / "orderbook" / "binance_spot" / f"{symbol.lower()}_{day}.gz"
                 for day in SPOT_SESSION_DAYS]
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"recording for {symbol} not found: {path}")
        session[symbol] = paths
    return session


def default_usdm_session(data_dir: str | Path | None = None) -> dict[str, list[Path]]:
    """Recorded Binance USD-M perpetual run of ETHUSDT and BTCUSDT, 2024-08-08 23:54 → 2024-08-09 00:00 UTC
    (``binance_usdm/<symbol>_20240808.gz``, ``@depth@0ms`` diffs with ``pu``; data README section 1).

    Returns ``{"ETHUSDT": [path], "BTCUSDT": [path]}``. Raises FileNotFoundError naming a missing file.
    """
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    session = {s: [root / "orderbook" / "binance_usdm" / f"{s.lower()}_20240808.gz"] for s in SPOT_SESSION_SYMBOLS}
    for symbol, (path,) in session.items():
        if not path.is_file():
            raise FileNotFoundError(f"recording for {symbol} not found: {path}")
    return session


def to_ns(local_ts: int) -> int:
    """Normalize a recorder timestamp to ns since the epoch, by magnitude (s, ms, µs or ns)."""
    if local_ts >= 10**17:
        return local_ts
    if local_ts >= 10**14:
        return local_ts * 1_000
    if local_ts >= 10**11:
        return local_ts * 1_000_000
    return local_ts * 1_000_000_000


class RecordingReader(Iterator[tuple[int, MarketEvent]]):
    """Iterator of ``(ts_init_ns, event)`` over the files of one recorded stream, in file order.

    ``counts`` (a Counter, live during the read): ``lines``, ``trades``, ``deltas``,
    ``snapshots``, ``ignored`` (streams we do not use), ``other_symbol`` (a stream message of
    another instrument, skipped), ``malformed`` (logged and skipped; a bad line never stops the
    read), ``truncated_files`` (a gzip cut short: logged, the lines before the cut are kept).
    """

    def __init__(self, paths: Sequence[str | Path], symbol: str) -> None:
        self.paths = [Path(p) for p in paths]
        self.symbol = symbol.upper()
        self.counts: Counter[str] = Counter()
        self._items = self._read()

    def __iter__(self) -> RecordingReader:
        return self

    def __next__(self) -> tuple[int, MarketEvent]:
        return next(self._items)

    def _read(self) -> Iterator[tuple[int, MarketEvent]]:
        for path in self.paths:
            for line_no, line in enumerate(_gunzip_lines(path, self.counts), start=1):
                item = self._parse_line(line, path, line_no)
                if item is not None:
                    yield item

    def _parse_line(self, line: bytes, path: Path, line_no: int) -> tuple[int, MarketEvent] | None:
        self.counts["lines"] += 1
        head, _, payload = line.partition(b" ")
        if not payload.strip():
            if head.strip():
                self.counts["malformed"] += 1
                logger.warning("%s:%d: line without a JSON part skipped", path.name, line_no)
            return None
        if _ignored_stream(payload):
            self.counts["ignored"] += 1
            return None
        try:
            ts_init = to_ns(int(head))
            event = parse_message(payload, symbol=self.symbol)
        except (MalformedMessage, ValueError) as exc:
            self.counts["malformed"] += 1
            logger.warning("%s:%d: malformed line skipped: %s", path.name, line_no, exc)
            return None
        if event is None:
            self.counts["ignored"] += 1
            return None
        if event.symbol != self.symbol:
            self.counts["other_symbol"] += 1
            return None
        self.counts[_COUNT_KEYS[type(event).__name__]] += 1
        return ts_init, event


def _gunzip_lines(path: Path, counts: Counter[str]) -> list[bytes]:
    """All lines of a (possibly multi-member) gzip file, decompressed at once (4x faster than
    ``gzip.open`` line by line). A truncated file (recorder killed mid-write) keeps its complete
    lines and counts ``truncated_files``. Raises OSError if the file is unreadable / not gzip.
    """
    raw = path.read_bytes()
    chunks = []
    while raw:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip header
        try:
            chunks.append(inflater.decompress(raw))
        except zlib.error as exc:
            raise OSError(f"{path}: not a gzip file or corrupt: {exc}") from exc
        if not inflater.eof:
            counts["truncated_files"] += 1
            logger.error("%s: truncated gzip; the last partial line is dropped", path)
            text = b"".join(chunks)
            return text[:text.rfind(b"\n") + 1].splitlines()
        raw = inflater.unused_data
    return b"".join(chunks).splitlines()


def _ignored_stream(payload: bytes) -> bool:
    """True for a combined-stream line of a stream we never parse (bookTicker, markPrice...).

    Checked on the raw bytes because these lines are ~75% of a recording; anything unusual is
    left to the parser.
    """
    if not payload.startswith(_STREAM_PREFIX):
        return False
    end = payload.find(b'"', len(_STREAM_PREFIX), 80)
    if end < 0:
        return False
    kind = payload[len(_STREAM_PREFIX):end].partition(b"@")[2]
    return kind not in (b"trade", b"depth") and not kind.startswith(b"depth@")


_COUNT_KEYS = {"Trade": "trades", "OrderBookDelta": "deltas", "OrderBookSnapshot": "snapshots"}


def read_recording(paths: Sequence[str | Path], symbol: str) -> RecordingReader:
    """Iterate ``(ts_init_ns, event)`` in file order over ``paths`` read as one stream.

    Args:
        paths: gzip recordings of one run, in order (e.g. the 20240808 file then 20240809).
        symbol: the instrument, upper case ("ETHUSDT"); snapshot lines are attributed to it.

    Returns:
        a :class:`RecordingReader`: iterate it; its ``counts`` (``malformed`` among them) are
        exposed for after the read. Malformed lines are logged (warning) and counted, never
        raised. Iterating raises OSError if a file cannot be opened or is not gzip.
    """
    return RecordingReader(paths, symbol)


def read_raw_depth(paths: Sequence[str | Path]) -> tuple[bytes | None, list[bytes]]:
    """Raw JSON of one recorded run, for the C pipeline: ``(snapshot, depth_messages)``.

    ``snapshot`` is the first REST snapshot line's JSON (None if the run has none);
    ``depth_messages`` every ``@depth`` stream message in file order (bytes, as received), the
    ones before the snapshot included (the sync rule drops them). Raises OSError like
    :func:`read_recording`.
    """
    counts: Counter[str] = Counter()
    snapshot: bytes | None = None
    messages: list[bytes] = []
    for path in paths:
        for line in _gunzip_lines(Path(path), counts):
            payload = line.partition(b" ")[2]
            if snapshot is None and b"lastUpdateId" in payload[:40]:
                snapshot = payload
            elif b"@depth" in payload[:40]:
                messages.append(payload)
    return snapshot, messages


class RecordingWriter:
    """Write raw stream lines in the recordings' format: gzip text, ``<receive ns> <json>`` a line, one file
    per symbol per UTC day (``<symbol lower>_<YYYYMMDD>.gz``, the day of the receive time), switched at
    midnight. Re-opening a day's file appends a gzip member (``read_recording`` reads multi-member files).

    ``lines`` counts lines written per symbol; ``paths`` lists the files in the order opened.
    Raises OSError if ``out_dir`` cannot be written.
    """

    def __init__(self, out_dir: str | Path, symbols: Sequence[str]) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.symbols = [s.upper() for s in symbols]
        self.lines: Counter[str] = Counter()
        self.paths: list[Path] = []
        self._open: dict[str, tuple[str, object]] = {}  # symbol -> (day, gzip file)

    def write(self, symbol: str, ts_ns: int, payload: str | bytes) -> None:
        """Append one line for ``symbol`` (upper case) received at ``ts_ns`` (ns since the epoch, UTC)."""
        import gzip
        import time as _time

        symbol = symbol.upper()
        day = _time.strftime("%Y%m%d", _time.gmtime(ts_ns // 1_000_000_000))
        current = self._open.get(symbol)
        if current is None or current[0] != day:
            if current is not None:
                current[1].close()
            path = self.out_dir / f"{symbol.lower()}_{day}.gz"
            self._open[symbol] = (day, gzip.open(path, "ab"))
            self.paths.append(path)
            current = self._open[symbol]
        data = payload.encode() if isinstance(payload, str) else payload
        current[1].write(b"%d %s\n" % (ts_ns, data))
        self.lines[symbol] += 1

    def files(self, symbol: str) -> list[Path]:
        """The files written for ``symbol``, in order (the input of :func:`read_recording`)."""
        return [p for p in self.paths if p.name.startswith(symbol.lower() + "_")]

    def close(self) -> None:
        """Close every open file (complete gzip members). Idempotent."""
        for _, fh in self._open.values():
            fh.close()
        self._open.clear()
