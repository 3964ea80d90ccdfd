"""Trading rules of the evaluation: the edge rule, the mixture, and the baselines.

Every rule trades one constant notional, one position at a time, each held ``hold_min`` minutes
(the trade horizon) and closed at market: a trade entered at sample ``i`` earns the gross return
``side * r_h[i]`` and pays the round trip ``cost_bps`` (fees both ways, spread, slippage;
``ml.evaluation.costs.CostModel``). A new trade can start once the previous one is closed. Entries
whose exit would fall after ``end_ms`` are not taken, so a fold's trades are settled inside it.

- edge rule: enter BUY when the calibrated expected net return ``edge[BUY] > margin_bps``; SELL
  (a short) likewise unless ``long_only`` (spot: a SELL only closes a long, which the fixed holding
  period already does); otherwise HOLD.
- always-HOLD: no trade, 0 bps.
- buy-and-hold: long from the first to the last sample of the window, fees and spread paid once.
- momentum: long when the return over the previous ``hold_min`` minutes is positive (short when
  negative unless long-only), at every free step.
- random: a seeded random choice of entry samples, as many trades as the rule compared with, the
  same side rule (BUY when long-only, else a fair coin).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

BPS = 1e4
MINUTE_MS = 60_000


@dataclass
class Trades:
    """Closed trades of one rule: entry sample index, side (+1 long, -1 short), gross and net bps,
    entry and exit times (ms), and the reason each was taken."""

    index: np.ndarray
    side: np.ndarray
    gross_bps: np.ndarray
    net_bps: np.ndarray
    entry_ms: np.ndarray
    exit_ms: np.ndarray
    reasons: list[str]

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def build(cls, idx: list[int], side: list[int], times: np.ndarray, returns: np.ndarray, cost_bps: float,
              hold_min: int, reasons: list[str]) -> Trades:
        i = np.asarray(idx, np.int64)
        s = np.asarray(side, np.float64)
        gross = s * returns[i] * BPS if len(i) else np.zeros(0)
        return cls(index=i, side=s.astype(np.int64), gross_bps=gross, net_bps=gross - cost_bps,
                   entry_ms=times[i], exit_ms=times[i] + hold_min * MINUTE_MS, reasons=reasons)


def _free_steps(times: np.ndarray, returns: np.ndarray, hold_min: int, end_ms: int):
    """Yield sample indices at which a new trade may start (previous closed, exit inside the window,
    return known); the caller sends back whether it entered."""
    free_at = -1
    hold = hold_min * MINUTE_MS
    for i in range(len(times)):
        t = times[i]
        if t < free_at or t + hold > end_ms or not np.isfinite(returns[i]):
            continue
        entered = yield i
        if entered:
            free_at = t + hold


def edge_rule(times: np.ndarray, edge_bps: np.ndarray, returns: np.ndarray, *, cost_bps: float,
              margin_bps: float, hold_min: int, end_ms: int, long_only: bool = True) -> Trades:
    """Trades of the edge rule (module docstring). ``edge_bps`` (N, 2) [BUY, SELL] expected net bps;
    ``returns`` (N,) fractional return over ``hold_min`` after each sample."""
    idx, side, reasons = [], [], []
    steps = _free_steps(times, returns, hold_min, end_ms)
    i = next(steps, None)
    while i is not None:
        buy, sell = float(edge_bps[i, 0]), float(edge_bps[i, 1])
        s = 0
        if buy > margin_bps and (long_only or buy >= sell):
            s, why = 1, f"edge BUY {buy:+.1f} bps > margin {margin_bps:.1f}"
        elif not long_only and sell > margin_bps:
            s, why = -1, f"edge SELL {sell:+.1f} bps > margin {margin_bps:.1f}"
        if s:
            idx.append(i)
            side.append(s)
            reasons.append(why)
        i = _send(steps, bool(s))
    return Trades.build(idx, side, times, returns, cost_bps, hold_min, reasons)


def _send(gen, value):
    try:
        return gen.send(value)
    except StopIteration:
        return None


def momentum_rule(times: np.ndarray, past_returns: np.ndarray, returns: np.ndarray, *, cost_bps: float,
                  hold_min: int, end_ms: int, long_only: bool = True) -> Trades:
    """Trades of the momentum baseline; ``past_returns`` (N,) return over the previous ``hold_min``."""
    idx, side, reasons = [], [], []
    steps = _free_steps(times, returns, hold_min, end_ms)
    i = next(steps, None)
    while i is not None:
        p = past_returns[i]
        s = 1 if p > 0 else (-1 if (p < 0 and not long_only) else 0)
        if s and np.isfinite(p):
            idx.append(i)
            side.append(s)
            reasons.append(f"past {hold_min} min {p * BPS:+.1f} bps")
        else:
            s = 0
        i = _send(steps, bool(s))
    return Trades.build(idx, side, times, returns, cost_bps, hold_min, reasons)


def random_rule(times: np.ndarray, returns: np.ndarray, n_trades: int, *, cost_bps: float, hold_min: int,
                end_ms: int, long_only: bool = True, seed: int = 0) -> Trades:
    """``n_trades`` non-overlapping trades at seeded random free steps (module docstring)."""
    rng = np.random.default_rng(seed)
    hold = hold_min * MINUTE_MS
    ok = np.flatnonzero(np.isfinite(returns) & (times + hold <= end_ms))
    idx: list[int] = []
    taken: list[int] = []
    for i in rng.permutation(ok):
        if len(idx) >= n_trades:
            break
        t = times[i]
        if all(abs(t - u) >= hold for u in taken):
            idx.append(int(i))
            taken.append(int(t))
    idx.sort()
    side = [1 if long_only else int(rng.choice([-1, 1])) for _ in idx]
    return Trades.build(idx, side, times, returns, cost_bps, hold_min, ["random"] * len(idx))


def buy_and_hold(times: np.ndarray, close: np.ndarray, cost_bps: float) -> Trades:
    """One long from the first to the last sample, cost paid once."""
    if len(times) < 2:
        return Trades.build([], [], times, np.zeros(len(times)), cost_bps, 0, [])
    gross = (close[-1] / close[0] - 1.0) * BPS
    return Trades(index=np.array([0]), side=np.array([1]), gross_bps=np.array([gross]),
                  net_bps=np.array([gross - cost_bps]), entry_ms=np.array([times[0]]),
                  exit_ms=np.array([times[-1]]), reasons=["buy and hold"])


def mixture_weights(val_net_bps: dict[str, np.ndarray], *, min_trades: int = 10) -> tuple[dict[str, float], dict[str, str]]:
    """Weights of the mixture from each model's net bps per trade on validation, and the reason.

    A model's weight is proportional to ``max(0, mean - standard error)`` of its validation net
    bps per trade (a one-standard-error lower bound of its edge); fewer than ``min_trades`` trades
    or no positive bound gives weight 0. All zero: the mixture has no weight and never trades."""
    raw, why = {}, {}
    for name, net in val_net_bps.items():
        n = len(net)
        if n < min_trades:
            raw[name], why[name] = 0.0, f"{n} validation trades < {min_trades}"
            continue
        mean = float(np.mean(net))
        se = float(np.std(net, ddof=1) / np.sqrt(n))
        raw[name] = max(0.0, mean - se)
        why[name] = f"validation net edge {mean:+.1f} ± {se:.1f} bps over {n} trades"
    total = sum(raw.values())
    return ({k: (v / total if total > 0 else 0.0) for k, v in raw.items()}, why)
