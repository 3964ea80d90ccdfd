"""Portfolio metrics from an equity curve (USD, one value per period).

- Drawdown_t = (max_{s<=t} E_s - E_t) / max_{s<=t} E_s; max drawdown is its maximum.
- Returns r_t = E_t / E_{t-1} - 1 (simple returns).
- Historical VaR at confidence c: the loss not exceeded with probability c, -quantile_{1-c}(r)
  (empirical quantile, linear interpolation), as a positive fraction of equity
  (Jorion, *Value at Risk*, 3rd ed., ch. 5).
- Parametric (Gaussian, variance-covariance) VaR: -(mu + z_{1-c} * sigma) with z the standard
  normal quantile (z_{0.05} = -1.645); mu, sigma the sample mean and std (ddof=1) (Jorion ch. 5;
  RiskMetrics Technical Document, 1996).
- Sharpe = mean(r - rf) / std(r) * sqrt(P), P periods per year (Sharpe 1994, "The Sharpe Ratio";
  annualising by sqrt(P) assumes i.i.d. returns, Lo 2002).
- Sortino = mean(r - T) / DD * sqrt(P), DD = sqrt(mean(min(r - T, 0)^2)) over all periods
  (Sortino & Price 1994, "Performance measurement in a downside risk framework").
Crypto trades every day: P = 365 * 86400 / period_seconds (365 for daily, 31_536_000 for 1 s).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

SECONDS_PER_YEAR = 365 * 86_400


def periods_per_year(period_seconds: float) -> float:
    """Periods in a 365-day year for a period of ``period_seconds`` (> 0)."""
    if period_seconds <= 0:
        raise ValueError(f"period_seconds must be > 0, got {period_seconds}")
    return SECONDS_PER_YEAR / period_seconds


def drawdown_curve(equity: Sequence[float]) -> np.ndarray:
    """(T,) drawdown fractions of an equity curve (T,) of positive values."""
    e = np.asarray(equity, dtype=np.float64)
    if e.size == 0:
        return e
    peak = np.maximum.accumulate(e)
    return np.where(peak > 0, (peak - e) / np.where(peak > 0, peak, 1.0), 0.0)


def max_drawdown(equity: Sequence[float]) -> float:
    dd = drawdown_curve(equity)
    return float(dd.max()) if dd.size else 0.0


def returns(equity: Sequence[float]) -> np.ndarray:
    """(T-1,) simple returns of an equity curve (T,)."""
    e = np.asarray(equity, dtype=np.float64)
    return e[1:] / e[:-1] - 1 if e.size > 1 else np.zeros(0)


def var_historical(r: Sequence[float], confidence: float = 0.95) -> float:
    """Historical VaR (positive fraction; formula in the module docstring). Raises ValueError on no returns."""
    x = np.asarray(r, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no returns")
    return float(-np.quantile(x, 1 - confidence))


def var_parametric(r: Sequence[float], confidence: float = 0.95) -> float:
    """Gaussian VaR (positive fraction). Raises ValueError with fewer than 2 returns."""
    x = np.asarray(r, dtype=np.float64)
    if x.size < 2:
        raise ValueError("need at least 2 returns")
    z = NormalDist().inv_cdf(1 - confidence)
    return float(-(x.mean() + z * x.std(ddof=1)))


def sharpe(r: Sequence[float], periods: float, risk_free: float = 0.0) -> float:
    """Annualised Sharpe ratio; 0 when the std is 0 or fewer than 2 returns."""
    x = np.asarray(r, dtype=np.float64) - risk_free
    if x.size < 2:
        return 0.0
    sd = x.std(ddof=1)
    return float(x.mean() / sd * math.sqrt(periods)) if sd > 0 else 0.0


def sortino(r: Sequence[float], periods: float, target: float = 0.0) -> float:
    """Annualised Sortino ratio; 0 when there is no downside or no returns."""
    x = np.asarray(r, dtype=np.float64) - target
    if x.size == 0:
        return 0.0
    dd = math.sqrt(float(np.mean(np.minimum(x, 0.0) ** 2)))
    return float(x.mean() / dd * math.sqrt(periods)) if dd > 0 else 0.0


def summary(equity: Sequence[float], period_seconds: float, confidence: float = 0.95) -> dict[str, float | None]:
    """All metrics of an equity curve: max_drawdown, var_historical, var_parametric, sharpe, sortino
    (VaRs None with fewer than 2 returns)."""
    r = returns(equity)
    p = periods_per_year(period_seconds)
    return {
        "max_drawdown": max_drawdown(equity),
        "var_historical": var_historical(r, confidence) if r.size >= 2 else None,
        "var_parametric": var_parametric(r, confidence) if r.size >= 2 else None,
        "sharpe": sharpe(r, p), "sortino": sortino(r, p),
    }
