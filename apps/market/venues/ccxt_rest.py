"""Binance REST market data through ccxt (sync): depth snapshots and candles, with a retry policy.

ccxt owns the HTTP (sessions, signing, error mapping); we call its implicit API for the raw
bodies we need (``publicGetDepth`` keeps Binance's ``lastUpdateId``, which the order book sync
rule needs; ``publicGetKlines`` gives the 12-field kline rows) and parse them with our own pure
parsers. Every URL of ``exchange.urls["api"]`` is pointed at the configured host, so the same
code talks to ``https://api.binance.com`` or to the replay venue on loopback (docs/GOTCHAS.md).

Error policy (Binance spot "General API Information" / "LIMITS": HTTP 429 = request weight
exceeded, back off for ``Retry-After`` seconds; 418 = IP banned after ignoring 429s, also with
``Retry-After``; 5xx = the request reached Binance but its outcome is unknown, retry; 4xx other
than these = our request is wrong):

- 429 / 418, 5xx, timeouts and connection errors are temporary: retried up to ``max_attempts``
  times, waiting the larger of ``Retry-After`` and an exponential backoff with full jitter, then
  raised as :class:`VenueTemporaryError`. A ``Retry-After`` above ``max_retry_after_s`` is not
  waited for here: it is raised at once (the caller decides whether to wait that long).
- any other 4xx (bad symbol, bad parameter) is permanent: raised at once as
  :class:`VenuePermanentError` with Binance's code and message.

Every case is counted in :attr:`BinanceRest.counts` (``requests``, ``http_429``, ``http_418``,
``http_5xx``, ``timeouts``, ``network_errors``, ``retries``, ``permanent_errors``).
"""
from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import ccxt

from ml.market.binance import parse_snapshot
from ml.market.errors import MarketDataError
from ml.market.events import Candle, OrderBookSnapshot

logger = logging.getLogger(__name__)

VENUES = ("binance", "binanceusdm")
TIMEFRAMES = ("1s", "1m", "1h", "1d")  # Binance kline intervals we store (spot has "1s", futures not)


class VenueError(MarketDataError):
    """A venue request failed. ``venue``: "binance"...; ``status``: HTTP status (None: no answer)."""

    def __init__(self, venue: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{venue}: {message}")
        self.venue, self.status = venue, status


class VenueTemporaryError(VenueError):
    """Rate limited (429/418), venue-side failure (5xx), timeout or connection error: try later.
    ``retry_after_s``: the venue's ``Retry-After`` (s) when it sent one."""

    def __init__(self, venue: str, message: str, status: int | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(venue, message, status)
        self.retry_after_s = retry_after_s


class VenuePermanentError(VenueError):
    """The venue refused the request itself (4xx other than 429/418): retrying cannot help."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: attempt ``k`` (0-based) waits
    ``uniform(0, min(cap_s, base_s * 2**k))`` seconds.

    Source: AWS Architecture Blog, Marc Brooker, "Exponential Backoff And Jitter" (2015): full
    jitter spreads the retries of many clients best for the least total work.
    """

    base_s: float = 0.5
    cap_s: float = 30.0

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError(f"backoff needs 0 < base_s <= cap_s, got {self.base_s}, {self.cap_s}")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (0 = the first retry)."""
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2 ** min(attempt, 62)))


def point_urls(api: dict, base_url: str) -> dict:
    """A copy of a ccxt ``urls["api"]`` with every http(s) URL moved to ``base_url``'s scheme and
    host, keeping its path (``/api/v3``, ``/fapi/v1``); websocket URLs are left alone."""
    host = base_url.rstrip("/")
    out: dict = {}
    for key, value in api.items():
        if isinstance(value, dict):
            out[key] = point_urls(value, base_url)
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            out[key] = host + urlsplit(value).path
        else:
            out[key] = value
    return out


def _exchange_class(venue: str) -> type:
    base = {"binance": ccxt.binance, "binanceusdm": ccxt.binanceusdm}[venue]

    class WithStatus(base):  # ccxt keeps the headers of the last answer, not its status
        last_status: int | None = None

        def on_rest_response(self, code, reason, url, method, response_headers, response_body, request_headers,
                             request_body):
            self.last_status = code
            return super().on_rest_response(code, reason, url, method, response_headers, response_body,
                                            request_headers, request_body)

    return WithStatus


class RetryingRest:
    """The retry policy shared by the REST clients (module docstring): ``_call`` runs one request,
    retries temporary errors with full-jitter backoff (at least ``Retry-After`` when the venue
    sends one, giving up when it asks for more than ``max_retry_after_s``) and raises permanent
    errors at once. Subclasses set ``exchange`` (ccxt), ``counts``, ``max_attempts``, ``backoff``,
    ``rng``, ``max_retry_after_s``, ``waits``, ``sleep`` and implement ``_classify``."""

    def _classify(self, what: str, exc: ccxt.BaseError) -> VenueError:
        raise NotImplementedError

    def _call(self, what: str, fn: Callable[..., object], *args: object) -> object:
        """One request ``fn(*args)`` with the retry policy; returns its result or raises VenueError."""
        for attempt in range(self.max_attempts):
            self.counts["requests"] += 1
            self.exchange.last_status = None
            try:
                return fn(*args)
            except ccxt.BaseError as exc:
                error = self._classify(what, exc)
            if isinstance(error, VenuePermanentError):
                self.counts["permanent_errors"] += 1
                raise error
            wait = self.backoff.delay(attempt, self.rng)
            if error.retry_after_s is not None:
                if error.retry_after_s > self.max_retry_after_s:
                    raise error
                wait = max(wait, error.retry_after_s)
            if attempt + 1 == self.max_attempts:
                raise error
            self.counts["retries"] += 1
            self.waits = [*self.waits[-99:], wait]
            logger.warning("%s (attempt %d/%d); retrying in %.2f s", error, attempt + 1, self.max_attempts, wait)
            self.sleep(wait)
        raise AssertionError("unreachable")


class BinanceRest(RetryingRest):
    """Binance spot (``venue="binance"``) or USD-M futures (``"binanceusdm"``) public REST.

    Args:
        venue: "binance" or "binanceusdm" (ValueError otherwise).
        rest_url: scheme and host, e.g. ``https://api.binance.com`` or ``http://127.0.0.1:9443``.
        timeout_s: per request.
        backoff, max_attempts, max_retry_after_s: retry policy (module docstring).
        rate_limit: ccxt's own request-weight throttle; default on, except on a loopback host.
        rng, sleep: for the jitter and the waits (tests pass a seeded ``random.Random``).
    """

    def __init__(self, *, venue: str = "binance", rest_url: str, timeout_s: float = 10.0,
                 backoff: Backoff | None = None, max_attempts: int = 5, max_retry_after_s: float = 120.0,
                 rate_limit: bool | None = None, rng: random.Random | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if venue not in VENUES:
            raise ValueError(f"venue must be one of {VENUES}, got {venue!r}")
        host = urlsplit(rest_url).hostname or ""
        if rate_limit is None:
            rate_limit = host not in ("127.0.0.1", "localhost", "::1")
        self.venue = venue
        self.exchange = _exchange_class(venue)({"enableRateLimit": rate_limit, "timeout": int(timeout_s * 1000)})
        self.exchange.urls["api"] = point_urls(self.exchange.urls["api"], rest_url)
        self.backoff = backoff or Backoff()
        self.max_attempts = max(1, max_attempts)
        self.max_retry_after_s = max_retry_after_s
        self.rng = rng or random.Random()
        self.sleep = sleep
        self.counts: Counter[str] = Counter()
        self.waits: list[float] = []  # seconds waited before each retry (last 100)

    def depth(self, symbol: str, limit: int = 1000) -> OrderBookSnapshot:
        """``GET /api/v3/depth`` (futures ``/fapi/v1/depth``): a REST depth snapshot of ``symbol``
        with its ``lastUpdateId`` ("How to manage a local order book correctly", step 3).

        ``limit``: levels a side (Binance: up to 5000 spot, 1000 futures; weight grows with it).
        Raises VenueTemporaryError / VenuePermanentError (module docstring), MalformedMessage.
        """
        return parse_snapshot(self.depth_raw(symbol, limit), symbol)

    def depth_raw(self, symbol: str, limit: int = 1000) -> dict:
        """The depth snapshot body as the venue sent it (``{"lastUpdateId", "bids", "asks"}``, decimal
        strings; futures also ``E``, ``T``), e.g. to record it. Raises like :meth:`depth`."""
        fn = self.exchange.fapiPublicGetDepth if self.venue == "binanceusdm" else self.exchange.publicGetDepth
        raw = self._call(f"depth {symbol}", fn, {"symbol": symbol.upper(), "limit": limit})
        if not isinstance(raw, dict):
            raise VenuePermanentError(self.venue, f"depth {symbol}: expected an object, got {type(raw).__name__}")
        return raw

    def candles(self, symbol: str, timeframe: str, *, start_ms: int | None = None, end_ms: int | None = None,
                limit: int = 1000) -> list[Candle]:
        """``GET /api/v3/klines``: up to ``limit`` (<= 1000) candles of ``timeframe`` ("1s", "1m",
        "1h", "1d"; no "1s" on futures) with open time in ``[start_ms, end_ms]`` (ms), oldest first
        (Binance: from ``start_ms`` if given, else the latest). The last one may still be open.

        Raises ValueError for another timeframe, VenuePermanentError for "1s" on USD-M and refused
        requests, VenueTemporaryError.
        """
        if timeframe not in TIMEFRAMES:
            raise ValueError(f"timeframe must be one of {TIMEFRAMES}, got {timeframe!r}")
        if timeframe == "1s" and self.venue == "binanceusdm":  # USD-M klines start at 1m
            self.counts["permanent_errors"] += 1
            raise VenuePermanentError(self.venue, "1s candles are not served by Binance USD-M (klines start at 1m)")
        params: dict = {"symbol": symbol.upper(), "interval": timeframe, "limit": limit}
        if start_ms is not None:
            params["startTime"] = int(start_ms)
        if end_ms is not None:
            params["endTime"] = int(end_ms)
        fn = self.exchange.fapiPublicGetKlines if self.venue == "binanceusdm" else self.exchange.publicGetKlines
        rows = self._call(f"klines {symbol} {timeframe}", fn, params)
        if not isinstance(rows, list):
            raise VenuePermanentError(self.venue, f"klines {symbol}: expected a list, got {type(rows).__name__}")
        return [_candle(symbol.upper(), timeframe, row) for row in rows]

    def _classify(self, what: str, exc: ccxt.BaseError) -> VenueError:
        status = self.exchange.last_status
        detail = f"{what}: {type(exc).__name__}: {str(exc)[:200]}"
        if status in (429, 418):
            self.counts[f"http_{status}"] += 1
            return VenueTemporaryError(self.venue, detail, status, _retry_after(self.exchange.last_response_headers))
        if status is not None and status >= 500:
            self.counts["http_5xx"] += 1
            return VenueTemporaryError(self.venue, detail, status)
        if isinstance(exc, ccxt.RequestTimeout) and status is None:
            self.counts["timeouts"] += 1
            return VenueTemporaryError(self.venue, detail)
        if status is None and isinstance(exc, ccxt.NetworkError):
            self.counts["network_errors"] += 1
            return VenueTemporaryError(self.venue, detail)
        return VenuePermanentError(self.venue, detail, status)


def _retry_after(headers: dict | None) -> float | None:
    """``Retry-After`` in seconds (Binance sends an integer), None if absent or unreadable."""
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _candle(symbol: str, timeframe: str, row: list) -> Candle:
    """One Binance kline row ``[open_time, o, h, l, c, volume, close_time, quote_volume, trades, ...]``."""
    try:
        return Candle(symbol, timeframe, int(row[0]), float(row[1]), float(row[2]), float(row[3]), float(row[4]),
                      float(row[5]), float(row[7]), int(row[8]))
    except (TypeError, ValueError, IndexError) as exc:
        raise VenuePermanentError("binance", f"klines {symbol}: malformed row {str(row)[:120]}: {exc}") from None
