"""Statistics of the evaluation lab: uncertainty of a mean, risk-adjusted ratios, the deflated
Sharpe ratio and the scores of a probabilistic classifier. Pure numpy / scipy.

Conventions: a series is a 1-D array of finite floats, oldest first; probabilities are float
(N, K), rows summing to 1; labels and predictions are int (N,) class indices in [0, K).
Every function raises ValueError, naming the argument, on bad input. Results are Python floats
(or None where a quantity is undefined), ready for JSON.

Sources:
- Moving-block bootstrap: Künsch (1989), "The jackknife and the bootstrap for general stationary
  observations", Ann. Statist. 17(3); percentile interval: Efron & Tibshirani (1993), *An
  Introduction to the Bootstrap*, ch. 13.
- Sharpe (1994), "The Sharpe Ratio"; Sortino & Price (1994), "Performance measurement in a
  downside risk framework"; Young (1991), "Calmar ratio: a smoother tool", Futures 20(1).
- PSR: Bailey & López de Prado (2012), "The Sharpe ratio efficient frontier", J. Risk 15(2);
  DSR: Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", J. Portfolio Management 40(5).
- Brier (1950), "Verification of forecasts expressed in terms of probability"; reliability
  diagrams: Niculescu-Mizil & Caruana (2005), "Predicting good probabilities with supervised
  learning".
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from ml.risk.metrics import periods_per_year

logger = logging.getLogger(__name__)

EULER_GAMMA = 0.5772156649015329
RATIO_KINDS = ("sharpe", "sortino", "calmar")
_CHUNK_CELLS = 1 << 22  # bootstrap cells (resamples x draws) held at once: ~32 MB of int64


# ----------------------------------------------------------------------------- validation

def _series(x: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds {int((~np.isfinite(a)).sum())} non-finite values")
    return a


def _labels(x: Sequence[int] | np.ndarray, name: str, n_classes: int | None = None) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size and not (np.issubdtype(a.dtype, np.integer) or np.array_equal(a, np.round(a))):
        raise ValueError(f"{name} must hold integer class indices, got dtype {a.dtype}")
    a = a.astype(np.int64)
    hi = n_classes if n_classes is not None else np.iinfo(np.int64).max
    if a.size and (a.min() < 0 or a.max() >= hi):
        raise ValueError(f"{name} must lie in [0, {n_classes}), got [{a.min()}, {a.max()}]")
    return a


def _probs(probs: np.ndarray, labels: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(f"probs must be (N, K) with N >= 1, K >= 2, got shape {p.shape}")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise ValueError("probs must be finite and in [0, 1]")
    worst = np.abs(p.sum(axis=1) - 1.0)
    if worst.max() > 1e-6:
        row = int(worst.argmax())
        raise ValueError(f"probs rows must sum to 1; row {row} sums to {p[row].sum():.6f}")
    y = _labels(labels, "labels", p.shape[1])
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"labels has {y.shape[0]} rows, probs {p.shape[0]}")
    return p, y


def _is_constant(x: np.ndarray) -> bool:
    """True when x's spread is rounding noise (std <= 1e-12 |mean|): no standard error, no t or Sharpe."""
    return bool(np.ptp(x) == 0 or x.std() <= 1e-12 * abs(x.mean()))


def _check_boot(alpha: float, n_boot: int, block: int) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be an integer >= 1, got {n_boot}")
    if int(block) != block or block < 1:
        raise ValueError(f"block must be an integer >= 1, got {block}")


# ----------------------------------------------------------------------------- bootstrap

def _boot_stats(x: np.ndarray, n_boot: int, block: int, seed: int, stat: str) -> np.ndarray:
    """(n_boot,) statistic of moving-block resamples of x (n >= 2). Each resample joins
    ceil(n / block) blocks of ``block`` consecutive values, starts uniform in [0, n - block], cut to n.
    Resamples are drawn in chunks of whole resamples to bound memory; the draws depend only on seed."""
    n = x.size
    b = min(int(block), n)
    k = -(-n // b)
    rng = np.random.default_rng(seed)
    cells = k if stat == "mean" else k * b
    chunk = max(1, _CHUNK_CELLS // cells)
    out = np.empty(n_boot)
    centre = x.mean()
    # prefix sums of the centred series give each block's sum in O(1) without copying values
    c = np.concatenate(([0.0], np.cumsum(x - centre)))
    tail = n - (k - 1) * b  # length of the last, cut block
    for lo in range(0, n_boot, chunk):
        starts = rng.integers(0, n - b + 1, size=(min(chunk, n_boot - lo), k))
        if stat == "mean" and b == 1:
            out[lo:lo + len(starts)] = x[starts].mean(axis=1)
        elif stat == "mean":
            full = (c[starts[:, :-1] + b] - c[starts[:, :-1]]).sum(axis=1)
            out[lo:lo + len(starts)] = centre + (full + c[starts[:, -1] + tail] - c[starts[:, -1]]) / n
        else:
            idx = (starts[:, :, None] + np.arange(b)).reshape(len(starts), k * b)[:, :n]
            out[lo:lo + len(starts)] = np.median(x[idx], axis=1)
    return out


def _summary(x: np.ndarray, alpha: float, n_boot: int, block: int, seed: int) -> tuple[dict, np.ndarray | None]:
    _check_boot(alpha, n_boot, block)
    n = int(x.size)
    out = {"mean": float(x.mean()) if n else None, "lo": None, "hi": None, "t": None, "p": None, "n": n}
    if n < 2:
        return out, None
    means = _boot_stats(x, n_boot, block, seed, "mean")
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    out.update(lo=float(lo), hi=float(hi))
    if not _is_constant(x):  # a constant series has no standard error: t undefined
        res = sps.ttest_1samp(x, 0.0)
        out.update(t=float(res.statistic), p=float(res.pvalue))
    return out, means


def mean_summary(x: Sequence[float] | np.ndarray, *, alpha: float = 0.05, n_boot: int = 2000,
                 block: int = 1, seed: int = 0) -> dict:
    """Mean of x (N,) with a bootstrap (1 - alpha) percentile interval and a one-sample t-test vs 0.

    ``block`` is the moving-block length (Künsch 1989) for autocorrelated series (1 = iid
    bootstrap; capped at N). Returns {"mean", "lo", "hi", "t", "p", "n"}: ``t`` the one-sample t
    statistic and ``p`` its two-sided p-value (scipy.stats.ttest_1samp). N < 2 gives None for
    lo/hi/t/p (and mean None when N = 0); a constant series gives None for t/p. Deterministic
    for a seed. Raises ValueError on a non-1-D or non-finite x, alpha outside (0, 1), n_boot < 1, block < 1.
    """
    return _summary(_series(x, "x"), alpha, n_boot, block, seed)[0]


def bootstrap_ci(x: Sequence[float] | np.ndarray, *, alpha: float = 0.05, n_boot: int = 2000, block: int = 1,
                 seed: int = 0, stat: str = "mean") -> tuple[float, float]:
    """(lo, hi): bootstrap (1 - alpha) percentile interval of the mean or median of x (N,), N >= 2.

    Same resampling as :func:`mean_summary`. Raises ValueError on N < 2, an unknown ``stat`` and
    the argument errors of :func:`mean_summary`.
    """
    a = _series(x, "x")
    _check_boot(alpha, n_boot, block)
    if stat not in ("mean", "median"):
        raise ValueError(f"stat must be 'mean' or 'median', got {stat!r}")
    if a.size < 2:
        raise ValueError(f"bootstrap_ci needs at least 2 observations, got {a.size}")
    lo, hi = np.quantile(_boot_stats(a, n_boot, block, seed, stat), [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def paired_difference_summary(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
                              alpha: float = 0.05, n_boot: int = 2000, block: int = 1, seed: int = 0) -> dict:
    """:func:`mean_summary` of a - b (both (N,), paired: e.g. a new and the live model's PnL on the
    same seconds) plus "prob_better": the share of bootstrap resamples whose mean(a - b) > 0
    (None when N < 2). Raises ValueError on unequal lengths and the errors of mean_summary."""
    x, y = _series(a, "a"), _series(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same length, got {x.size} and {y.size}")
    out, means = _summary(x - y, alpha, n_boot, block, seed)
    out["prob_better"] = float((means > 0).mean()) if means is not None else None
    return out


def binomial_p_value(successes: int, trials: int, p: float = 0.5) -> float | None:
    """One-sided P(X >= successes) for X ~ Binomial(trials, p) (scipy.stats.binomtest,
    alternative="greater"); None when trials == 0. Raises ValueError unless 0 <= successes <= trials
    (integers) and 0 <= p <= 1."""
    if int(successes) != successes or int(trials) != trials or not 0 <= successes <= trials:
        raise ValueError(f"need integers 0 <= successes <= trials, got {successes}, {trials}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if trials == 0:
        return None
    return float(sps.binomtest(int(successes), int(trials), p, alternative="greater").pvalue)


# ----------------------------------------------------------------------------- ratios

def max_drawdown(equity: Sequence[float] | np.ndarray) -> float:
    """Largest peak-to-trough fall of a cumulative series (T,), in its own units (USD, return
    units...), >= 0; 0 for an empty series. Unlike ``ml.risk.metrics.max_drawdown`` (a fraction of
    the peak), this is absolute, so it works for cumulative PnL that starts at 0."""
    e = _series(equity, "equity")
    return float((np.maximum.accumulate(e) - e).max()) if e.size else 0.0


def _per_period(kind: str, r: np.ndarray) -> tuple[float | None, str | None]:
    if r.size < (1 if kind == "sortino" else 2):
        return None, f"{r.size} returns: too few for a {kind} ratio"
    if kind == "sharpe":
        if _is_constant(r):
            return None, "zero variance: Sharpe ratio undefined"
        return float(r.mean() / r.std(ddof=1)), None
    if kind == "sortino":
        downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
        if downside == 0:
            return None, "no losing period: downside deviation 0, Sortino ratio undefined"
        return float(r.mean() / downside), None
    mdd = max_drawdown(np.concatenate(([0.0], np.cumsum(r))))
    if mdd == 0:
        return None, "no drawdown: Calmar ratio undefined"
    return float(r.mean() / mdd), None


def annualised_ratio(kind: str, returns: Sequence[float] | np.ndarray, *, period_seconds: float,
                     span_seconds: float, min_span_days: float = 30.0, min_obs: int = 30) -> dict:
    """Sharpe, Sortino or Calmar ratio of per-period returns (N,), annualised only when it means something.

    - Sharpe = mean(r) / std(r, ddof=1) (Sharpe 1994); Sortino = mean(r) / sqrt(mean(min(r, 0)^2))
      (Sortino & Price 1994, target 0); both x sqrt(P) when annualised, P = 365 d / period_seconds.
    - Calmar = mean(r) / max drawdown of the cumulative sum of r from 0 (Young 1991); x P when
      annualised (annualised arithmetic return / max drawdown). Returns are summed, so pass log
      returns or returns on a fixed notional.

    Annualised only if span_seconds (the window the returns cover) >= min_span_days days and
    N >= min_obs; otherwise "value" is the per-period (per trade / per observation) ratio and
    "reason" says why. Returns {"value": float | None, "annualised": bool, "reason": str}; value is
    None (with the reason) for zero variance, no downside, no drawdown or too few returns.
    Raises ValueError on an unknown kind, period_seconds <= 0, span_seconds < 0, or bad returns.
    """
    if kind not in RATIO_KINDS:
        raise ValueError(f"kind must be one of {RATIO_KINDS}, got {kind!r}")
    r = _series(returns, "returns")
    if not (math.isfinite(period_seconds) and period_seconds > 0):
        raise ValueError(f"period_seconds must be finite and > 0, got {period_seconds}")
    if not (math.isfinite(span_seconds) and span_seconds >= 0):
        raise ValueError(f"span_seconds must be finite and >= 0, got {span_seconds}")
    value, why = _per_period(kind, r)
    if value is None:
        return {"value": None, "annualised": False, "reason": why}
    short = []
    if span_seconds / 86_400 < min_span_days:
        short.append(f"window {span_seconds / 86_400:.2f} days < {min_span_days:g} days")
    if r.size < min_obs:
        short.append(f"{r.size} observations < {min_obs}")
    if short:
        return {"value": value, "annualised": False, "reason": "; ".join(short) + ": per-period ratio, not annualised"}
    per_year = periods_per_year(period_seconds)
    scale = per_year if kind == "calmar" else math.sqrt(per_year)
    return {"value": value * scale, "annualised": True,
            "reason": f"annualised: {per_year:g} periods of {period_seconds:g} s in 365 days"}


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """Expected maximum of n_trials independent Sharpe estimates with the given variance under a
    true Sharpe of 0 (Bailey & López de Prado 2014, eq. for SR0):
    sqrt(V) * ((1 - γ) Φ^-1(1 - 1/N) + γ Φ^-1(1 - 1/(N e))), γ Euler–Mascheroni; 0 for N = 1.
    Raises ValueError on n_trials < 1 or a negative / non-finite variance."""
    if int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials}")
    if not (math.isfinite(variance) and variance >= 0):
        raise ValueError(f"variance must be finite and >= 0, got {variance}")
    if n_trials == 1:
        return 0.0
    n = float(n_trials)
    z = (1 - EULER_GAMMA) * sps.norm.ppf(1 - 1 / n) + EULER_GAMMA * sps.norm.ppf(1 - 1 / (n * math.e))
    return float(math.sqrt(variance) * z)


def probabilistic_sharpe_ratio(sharpe: float, *, n_obs: int, benchmark: float = 0.0, skew: float = 0.0,
                               kurtosis: float = 3.0) -> float:
    """PSR in [0, 1]: probability that the true Sharpe exceeds ``benchmark`` (Bailey & López de Prado 2012):
    Φ((SR - SR*) sqrt(n_obs - 1) / sqrt(1 - skew SR + (kurtosis - 1) / 4 SR^2)).

    ``sharpe`` and ``benchmark`` are per observation (not annualised); ``kurtosis`` is the plain
    (non-excess) kurtosis of the returns, 3 for a normal. Raises ValueError on n_obs < 2,
    non-finite arguments, or moments that make the variance term <= 0.
    """
    args = {"sharpe": sharpe, "benchmark": benchmark, "skew": skew, "kurtosis": kurtosis}
    for name, v in args.items():
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v}")
    if int(n_obs) != n_obs or n_obs < 2:
        raise ValueError(f"n_obs must be an integer >= 2, got {n_obs}")
    var_term = 1 - skew * sharpe + (kurtosis - 1) / 4 * sharpe**2
    if var_term <= 0:
        raise ValueError(f"skew={skew}, kurtosis={kurtosis} give a non-positive variance term {var_term:.4g}")
    return float(sps.norm.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var_term)))


def deflated_sharpe_ratio(sharpe: float, *, n_obs: int, n_trials: int, skew: float = 0.0, kurtosis: float = 3.0,
                          trial_sharpe_variance: float | None = None) -> float:
    """DSR in [0, 1] (Bailey & López de Prado 2014): the PSR of the per-observation ``sharpe``
    against SR0 = :func:`expected_max_sharpe` (n_trials, V), the best Sharpe that n_trials
    independent tries of a worthless strategy would show. V = trial_sharpe_variance (the variance
    of the trials' per-observation Sharpe ratios), by default 1 / (n_obs - 1), the variance of a
    Sharpe estimate under the null. n_trials = 1 gives the plain PSR against 0. Raises ValueError
    as :func:`probabilistic_sharpe_ratio` and :func:`expected_max_sharpe`."""
    if int(n_obs) != n_obs or n_obs < 2:
        raise ValueError(f"n_obs must be an integer >= 2, got {n_obs}")
    v = 1.0 / (n_obs - 1) if trial_sharpe_variance is None else trial_sharpe_variance
    sr0 = expected_max_sharpe(n_trials, v)
    return probabilistic_sharpe_ratio(sharpe, n_obs=n_obs, benchmark=sr0, skew=skew, kurtosis=kurtosis)


# ----------------------------------------------------------------------------- classification

def log_loss(probs: np.ndarray, labels: Sequence[int] | np.ndarray, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood (nats) of labels (N,) under probs (N, K), each p clipped to
    [eps, 1]. ln K for uniform probs. Raises ValueError on bad shapes, rows not summing to 1,
    labels outside [0, K), eps outside (0, 1)."""
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), got {eps}")
    p, y = _probs(probs, labels)
    return float(-np.log(np.clip(p[np.arange(y.size), y], eps, 1.0)).mean())


def brier_score(probs: np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
    """Multi-class Brier score (Brier 1950): mean over rows of sum_k (p_k - 1[y = k])^2, in [0, 2].
    probs (N, K), labels int (N,). Raises ValueError as :func:`log_loss`."""
    p, y = _probs(probs, labels)
    return float(((p - np.eye(p.shape[1])[y]) ** 2).sum(axis=1).mean())


def prior_probs(labels: Sequence[int] | np.ndarray, n_classes: int = 3, smoothing: float = 1.0) -> np.ndarray:
    """(K,) Laplace-smoothed class frequencies (count_k + s) / (N + K s) of labels (N,). Raises
    ValueError on labels outside [0, K), s < 0, or N = 0 with s = 0."""
    if int(n_classes) != n_classes or n_classes < 1:
        raise ValueError(f"n_classes must be an integer >= 1, got {n_classes}")
    if not (math.isfinite(smoothing) and smoothing >= 0):
        raise ValueError(f"smoothing must be finite and >= 0, got {smoothing}")
    y = _labels(labels, "labels", n_classes)
    if y.size == 0 and smoothing == 0:
        raise ValueError("no labels and no smoothing: priors undefined")
    return (np.bincount(y, minlength=n_classes) + smoothing) / (y.size + n_classes * smoothing)


def confusion_matrix(labels: Sequence[int] | np.ndarray, preds: Sequence[int] | np.ndarray,
                     n_classes: int = 3) -> list[list[int]]:
    """K x K counts, rows the true class, columns the predicted one. Raises ValueError on unequal
    lengths or classes outside [0, K)."""
    y, p = _labels(labels, "labels", n_classes), _labels(preds, "preds", n_classes)
    if y.shape != p.shape:
        raise ValueError(f"labels and preds must have the same length, got {y.size} and {p.size}")
    return np.bincount(y * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes).tolist()


def reliability_curve(probs: np.ndarray, labels: Sequence[int] | np.ndarray, n_bins: int = 10) -> list[dict]:
    """Reliability diagram over every (sample, class) pair, one-vs-rest (N K points).

    Bin i holds predicted probabilities in [i / n_bins, (i + 1) / n_bins) (the last bin closed).
    Returns one dict per non-empty bin, in order: {"bin": bin centre, "predicted": mean predicted
    probability, "observed": frequency of the class, "count": points}. Raises ValueError as
    :func:`log_loss` and on n_bins < 1."""
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins}")
    p, y = _probs(probs, labels)
    flat, hit = p.ravel(), np.eye(p.shape[1])[y].ravel()
    which = np.minimum((flat * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    pred_sum = np.bincount(which, weights=flat, minlength=n_bins)
    hit_sum = np.bincount(which, weights=hit, minlength=n_bins)
    return [{"bin": float((i + 0.5) / n_bins), "predicted": float(pred_sum[i] / count[i]),
             "observed": float(hit_sum[i] / count[i]), "count": int(count[i])}
            for i in np.flatnonzero(count)]


def accuracy_vs_majority(labels: Sequence[int] | np.ndarray, preds: Sequence[int] | np.ndarray) -> dict:
    """{"accuracy": share of preds == labels, "majority_rate": share of the most frequent true class
    (the accuracy of always predicting it), "n": N}; None rates for N = 0. Raises ValueError on
    unequal lengths or negative / non-integer classes."""
    y, p = _labels(labels, "labels"), _labels(preds, "preds")
    if y.shape != p.shape:
        raise ValueError(f"labels and preds must have the same length, got {y.size} and {p.size}")
    if y.size == 0:
        return {"accuracy": None, "majority_rate": None, "n": 0}
    return {"accuracy": float((y == p).mean()), "majority_rate": float(np.bincount(y).max() / y.size), "n": int(y.size)}
