"""Shadow checkpoints: judged on the seconds the live checkpoint also predicted, promoted to live
only with a proven net edge after costs.

A newly trained checkpoint goes to SHADOW when its model has a live one
(``services.checkpoint_register``); inference runs it every second beside the live one and stores
its predictions with ``shadow=True`` (``apps.predictions.inference``); the outcome scorer scores
them like any other (``apps.predictions.outcomes``).

Net outcome of one call, bps of the notional, at the model's label horizon ``h``
(``apps.predictions.cases.horizon_for_config``; 5m for the candle models):

    BUY: 1e4 r - c      SELL: -1e4 r - c      HOLD: 0

with ``r`` the realized simple return over ``h`` (``PredictionOutcome.realized_return``, definition
in ml/outcomes.py) and ``c`` = ``RegistrySettings.round_trip_cost_bps`` (fees both ways plus the
spread; default 20 = Binance spot taker 2 x 10 bps). Always-HOLD scores 0.

Gate, per shadow: the net outcomes ``a`` (shadow) and ``b`` (live checkpoint) on the SAME
(instrument, second) pairs are compared with
``ml.evaluation.stats.paired_difference_summary(a, b, alpha=promotion_alpha, n_boot=2000,
block=h in seconds, seed=0)``: a moving-block bootstrap (Künsch 1989), because consecutive seconds
share most of their ``h`` window and an iid resample would overstate the confidence.

- promote when ``n >= promotion_min_n`` and the interval's lower end ``lo > 0``;
- refuse (retire) when ``n >= promotion_min_n`` and ``hi <= 0`` (confidently no better), or when
  the shadow is older than ``shadow_max_hours`` without a promotion;
- hold when the live checkpoint is pinned by an admin (a pin is never replaced automatically);
- otherwise pending.

Every check stores its evidence (n, mean, interval, p, prob_better, ...) in the shadow's
``evidence``; a promotion or refusal also updates the TrainingRun that produced the shadow.
Called every 5 minutes by ``workers.scoring.evaluate_shadows`` (beat) and by the admin.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import numpy as np

from apps.predictions.models import ModelCheckpoint, PredictionOutcome, TrainingRun
from apps.predictions.selectors import checkpoints_in_shadow, registry_settings_get
from ml.outcomes import BPS, HORIZONS_MS

logger = logging.getLogger(__name__)

N_BOOT = 2000


def net_outcome_bps(actions: np.ndarray, returns: np.ndarray, cost_bps: float) -> np.ndarray:
    """float64 (N,) net bps of acting on each call (module docstring): ``actions`` (N,) "BUY" /
    "SELL" / "HOLD" strings, ``returns`` (N,) simple returns over the horizon, ``cost_bps`` the
    round-trip cost charged to every BUY / SELL."""
    a, r = np.asarray(actions), np.asarray(returns, dtype=np.float64)
    return np.where(a == "BUY", BPS * r - cost_bps, np.where(a == "SELL", -BPS * r - cost_bps, 0.0))


def shadow_pairs(*, shadow: ModelCheckpoint, live: ModelCheckpoint, horizon: str) -> tuple[np.ndarray, ...]:
    """The seconds both checkpoints' calls were scored at ``horizon``, oldest first.

    Returns (ts_event epoch ms int64 (N,), shadow actions (N,), live actions (N,), realized returns
    float64 (N,)): the same second has one realized return for both."""
    shadow_rows = (PredictionOutcome.objects.filter(prediction__checkpoint=shadow, shadow=True, horizon=horizon)
                   .values_list("instrument_id", "ts_event", "action", "realized_return"))
    by_second = {(i, ts): (action, r) for i, ts, action, r in shadow_rows}
    if not by_second:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object), np.zeros(0, dtype=object), np.zeros(0)
    first = min(ts for _i, ts in by_second)
    live_rows = (PredictionOutcome.objects.filter(prediction__checkpoint=live, shadow=False, horizon=horizon,
                                                  model_name=live.model_name, ts_event__gte=first)
                 .values_list("instrument_id", "ts_event", "action"))
    pairs = sorted((ts, *by_second[(i, ts)], action) for i, ts, action in live_rows if (i, ts) in by_second)
    ts = np.array([int(p[0].timestamp() * 1000) for p in pairs], dtype=np.int64)
    return (ts, np.array([p[1] for p in pairs], dtype=object), np.array([p[3] for p in pairs], dtype=object),
            np.array([p[2] for p in pairs], dtype=np.float64))


def shadow_evaluate(*, checkpoint: ModelCheckpoint, now: datetime | None = None) -> dict:
    """Judge one shadow checkpoint under the module's gate; promote, refuse or leave it pending.

    Returns the evidence stored on it: {"decision": "promoted" | "refused" | "pending" | "held",
    "why", "n", "mean", "lo", "hi", "t", "p", "prob_better" (bps per second, shadow minus live),
    "shadow_net_bps", "live_net_bps" (mean net bps per second), "shadow_trades", "live_trades",
    "horizon", "cost_bps", "alpha", "min_n", "block", "live_version", "checked_at"}.

    Raises:
        ValueError: ``checkpoint`` is not in shadow.
    """
    from apps.predictions.cases import horizon_for_config
    from apps.predictions.services import checkpoint_promote, checkpoint_retire
    from ml.evaluation.stats import paired_difference_summary

    if checkpoint.state != ModelCheckpoint.State.SHADOW:
        raise ValueError(f"checkpoint {checkpoint} is {checkpoint.state}, not in shadow")
    now = now or datetime.now(UTC)
    cfg = registry_settings_get()
    live = ModelCheckpoint.objects.filter(model_name=checkpoint.model_name, is_active=True).first()
    horizon = horizon_for_config(checkpoint.config or {})
    block = HORIZONS_MS[horizon] // 1000
    evidence = {"horizon": horizon, "cost_bps": cfg.round_trip_cost_bps, "alpha": cfg.promotion_alpha,
                "min_n": cfg.promotion_min_n, "block": block, "live_version": live.version if live else None,
                "checked_at": now.isoformat(), "n": 0, "mean": None, "lo": None, "hi": None, "t": None, "p": None,
                "prob_better": None, "since": checkpoint.evidence.get("since")}
    if live is None:
        evidence.update(decision="promoted", why="no live checkpoint to compare with")
        checkpoint_promote(checkpoint=checkpoint, evidence=evidence)
        _run_update(checkpoint, TrainingRun.State.PROMOTED, evidence)
        return evidence
    _ts, shadow_actions, live_actions, returns = shadow_pairs(shadow=checkpoint, live=live, horizon=horizon)
    a = net_outcome_bps(shadow_actions, returns, cfg.round_trip_cost_bps)
    b = net_outcome_bps(live_actions, returns, cfg.round_trip_cost_bps)
    if len(a):
        evidence.update(paired_difference_summary(a, b, alpha=cfg.promotion_alpha, n_boot=N_BOOT, block=block, seed=0))
        evidence.update(shadow_net_bps=float(a.mean()), live_net_bps=float(b.mean()),
                        shadow_trades=int((shadow_actions != "HOLD").sum()), live_trades=int((live_actions != "HOLD").sum()))
    decision, why = _decide(evidence, cfg, checkpoint, live, now)
    evidence.update(decision=decision, why=why)
    if decision == "promoted":
        checkpoint_promote(checkpoint=checkpoint, evidence=evidence)
        _run_update(checkpoint, TrainingRun.State.PROMOTED, evidence)
    elif decision == "refused":
        checkpoint_retire(checkpoint=checkpoint, evidence=evidence)
        _run_update(checkpoint, TrainingRun.State.REFUSED, evidence)
    else:
        ModelCheckpoint.objects.filter(pk=checkpoint.pk).update(evidence=_plain(evidence))
    logger.info("shadow %s: %s (%s)", checkpoint, decision, why)
    return evidence


def _decide(e: dict, cfg, checkpoint: ModelCheckpoint, live: ModelCheckpoint, now: datetime) -> tuple[str, str]:
    n, lo, hi = e["n"], e["lo"], e["hi"]
    interval = (f"net edge vs live {e['mean']:+.2f} bps/s, {100 * (1 - cfg.promotion_alpha):.0f} % interval "
                f"[{lo:+.2f}, {hi:+.2f}] on {n} shared seconds at {e['horizon']}" if lo is not None
                else f"{n} shared scored seconds at {e['horizon']}")
    enough = n >= cfg.promotion_min_n
    if enough and lo is not None and lo > 0:
        if live.pinned:
            return "held", f"{interval}: better, but the live checkpoint is pinned by an admin"
        return "promoted", f"{interval}: lower end > 0"
    if enough and hi is not None and hi <= 0:
        return "refused", f"{interval}: not better than the live checkpoint"
    if now - checkpoint.created_at > timedelta(hours=cfg.shadow_max_hours):
        return "refused", f"{interval}: no proven edge after {cfg.shadow_max_hours} h in shadow"
    if not enough:
        return "pending", f"{interval}: needs {cfg.promotion_min_n}"
    return "pending", f"{interval}: the interval still includes 0"


def _run_update(checkpoint: ModelCheckpoint, state: str, evidence: dict) -> None:
    TrainingRun.objects.filter(checkpoint=checkpoint, state=TrainingRun.State.SHADOW).update(
        state=state, reason=evidence["why"][:255])


def _plain(value: dict) -> dict:
    from apps.predictions.services import _finite

    return _finite(value)


def evidence_line(evidence: dict) -> str:
    """A promotion check (``ModelCheckpoint.evidence``) in one line, e.g. "promoted: n=3600,
    +1.20 bps/s [+0.40, +2.10]" (mean and interval of shadow minus live net bps per second); ""
    when there is none."""
    if not evidence or not evidence.get("decision"):
        return ""
    text = f"{evidence['decision']}: n={evidence.get('n', 0)}"
    if evidence.get("mean") is not None:
        text += f", {evidence['mean']:+.2f} bps/s"
    if evidence.get("lo") is not None and evidence.get("hi") is not None:
        text += f" [{evidence['lo']:+.2f}, {evidence['hi']:+.2f}]"
    return text


def shadows_evaluate(*, now: datetime | None = None) -> dict[str, str]:
    """Every shadow checkpoint judged (:func:`shadow_evaluate`); a failure is logged and the others
    go on. Returns "<model>:<version>" -> decision ("error: ..." for a failure)."""
    out = {}
    for checkpoint in checkpoints_in_shadow():
        try:
            out[str(checkpoint)] = shadow_evaluate(checkpoint=checkpoint, now=now)["decision"]
        except Exception as exc:  # one broken shadow must not stop the others
            logger.exception("shadow evaluation of %s failed", checkpoint)
            out[str(checkpoint)] = f"error: {type(exc).__name__}: {exc}"
    return out
