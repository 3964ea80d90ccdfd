"""How backtest pages and exports write numbers: thousands separators, bps and %, prices to the
instrument's tick, sizes to its lot, ratios with the reason they are not annualised.

Every function takes ``None`` (a figure the engine could not compute) and returns ``"—"`` for it,
so a template never shows "None" or "nan".
"""
from __future__ import annotations

import logging
import math
from decimal import Decimal

logger = logging.getLogger(__name__)

MISSING = "—"
# Binance spot ETHUSDT filters (exchangeInfo PRICE_FILTER tickSize 0.01, LOT_SIZE stepSize 0.0001).
PRICE_DECIMALS = 2
SIZE_DECIMALS = 4


def _finite(x: object) -> float | None:
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def fmt_num(x: object, digits: int = 2, *, sign: bool = False) -> str:
    """``x`` with ``digits`` decimals and thousands separators (``1,234.50``); ``+`` if ``sign``."""
    value = _finite(x)
    if value is None:
        return MISSING
    return f"{value:+,.{digits}f}" if sign else f"{value:,.{digits}f}"


def fmt_bps(x: object, digits: int = 1, *, sign: bool = False) -> str:
    """Basis points: ``-1,234.5 bps``."""
    text = fmt_num(x, digits, sign=sign)
    return text if text == MISSING else f"{text} bps"


def fmt_pct(fraction: object, digits: int = 2, *, sign: bool = False) -> str:
    """A fraction as a percentage: 0.0123 -> ``1.23 %``."""
    value = _finite(fraction)
    return MISSING if value is None else f"{fmt_num(value * 100, digits, sign=sign)} %"


def fmt_bps_pct(bps: object, *, sign: bool = False) -> str:
    """Basis points with the same figure in %: 35 -> ``35.0 bps (0.35 %)``."""
    value = _finite(bps)
    if value is None:
        return MISSING
    return f"{fmt_bps(value, sign=sign)} ({fmt_pct(value / 10_000, sign=sign)})"


def fmt_drawdown(fraction: object) -> str:
    """A drawdown fraction (0.000649) in % and bps: ``0.06 % (6.5 bps)``."""
    value = _finite(fraction)
    return MISSING if value is None else f"{fmt_pct(value)} ({fmt_bps(value * 10_000)})"


def decimals_of(step: Decimal | float | str | None, default: int) -> int:
    """Decimals of a tick or lot step (Decimal("0.01") -> 2); ``default`` when unknown."""
    if step is None:
        return default
    try:
        exponent = Decimal(str(step)).normalize().as_tuple().exponent
    except ArithmeticError:
        return default
    return max(0, -int(exponent)) if isinstance(exponent, int) else default


def fmt_price(x: object, decimals: int = PRICE_DECIMALS) -> str:
    """A price to the tick: ``2,701.35``."""
    return fmt_num(x, decimals)


def fmt_size(x: object, decimals: int = SIZE_DECIMALS) -> str:
    """A size to the lot: ``0.3700``."""
    return fmt_num(x, decimals)


def fmt_p(p: object) -> str:
    """A p-value: three decimals, ``< 0.001`` below."""
    value = _finite(p)
    if value is None:
        return MISSING
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def fmt_ratio(ratio: object, digits: int = 2) -> str:
    """A Sharpe / Sortino / Calmar entry ``{"value", "annualised", "reason"}`` (or a bare number):
    ``1.23 (annualised)``, ``0.0123 per period`` (not annualised: the reason is ``ratio_reason``),
    ``—`` when there is no value."""
    if not isinstance(ratio, dict):
        return fmt_num(ratio, digits)
    value = _finite(ratio.get("value"))
    if value is None:
        return MISSING
    if ratio.get("annualised"):
        return f"{fmt_num(value, digits)} (annualised)"
    return f"{fmt_num(value, digits + 2)} per period"


def ratio_reason(ratio: object) -> str:
    """Why a ratio is not annualised or missing ("" when it is annualised or unknown)."""
    if not isinstance(ratio, dict) or ratio.get("annualised"):
        return ""
    return str(ratio.get("reason") or "")


def fmt_interval(est: object, digits: int = 2) -> str:
    """A mean with its 95 % interval ``{"mean", "lo", "hi", "n"}``: ``+1.20 bps [−0.40, +2.80] (n = 12)``."""
    if not isinstance(est, dict):
        return MISSING
    mean = fmt_bps(est.get("mean"), digits, sign=True)
    if mean == MISSING:
        return MISSING
    lo, hi = fmt_num(est.get("lo"), digits, sign=True), fmt_num(est.get("hi"), digits, sign=True)
    n = est.get("n")
    return f"{mean} [{lo}, {hi}]" + (f" (n = {n})" if n is not None else "")
