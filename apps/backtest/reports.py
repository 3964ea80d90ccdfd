"""The walk-forward evaluation report: reads of ``BacktestRun.summary["walk_forward"]``, pure (no
database), used by the evaluation page (``apps.backtest.dash_apps``), the comparison page and the
exports (``apps.backtest.export``).

The shape (written by ``apps.backtest.walk_forward``):
``{"params": {...}, "folds": [FOLD, ...], "total": SCOPE}``; a FOLD is a SCOPE plus ``fold``,
``start``, ``end``, ``days``, ``train`` and ``validation`` windows. A SCOPE holds ``models``
{name: PERF or {"error": str}}, ``orchestrator`` PERF, ``baselines`` {name: LITE},
``deflated_sharpe``, ``hit_rate_p_value`` and ``costs_bps`` {"fees", "spread", "slippage"}.
Money is in bps of the traded notional; ``equity`` is ``[[ts_ms, cumulative net bps], ...]``.
Any figure may be null. Runs stored before this shape (``folds`` with ``test`` / ``pnl_bps`` and an
``aggregate``) are ``LEGACY``: the pages show them with a note instead of the lab.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

logger = logging.getLogger(__name__)

CURRENT, LEGACY, EMPTY = "current", "legacy", "empty"
TOTAL = "total"  # the scope key of the whole run (all folds)
BASELINES = ("always_hold", "buy_and_hold", "momentum", "random")
MODEL, ORCHESTRATOR, BASELINE = "model", "orchestrator", "baseline"


class ReportError(ValueError):
    """A scope or agent that the stored run does not have; the message names it."""


@dataclass(frozen=True, slots=True)
class Agent:
    """One equity curve of a scope: a model, the orchestrator or a baseline.

    ``figures`` is its PERF / LITE dict (empty when missing); ``error`` the engine's message when the
    model failed on this fold."""

    name: str
    kind: str
    figures: dict
    error: str | None = None

    @property
    def label(self) -> str:
        return self.name if self.kind != BASELINE else f"{self.name} (baseline)"


def shape_of(wf: object) -> str:
    """CURRENT, LEGACY or EMPTY for a stored ``summary["walk_forward"]`` value."""
    if not isinstance(wf, dict) or not wf:
        return EMPTY
    folds = wf.get("folds")
    if (isinstance(wf.get("params"), dict) and isinstance(wf.get("total"), dict) and isinstance(folds, list)
            and all(isinstance(f, dict) and isinstance(f.get("models"), dict) for f in folds)):
        return CURRENT
    return LEGACY


def fold_numbers(wf: dict) -> list[int]:
    """The fold numbers of a CURRENT walk-forward, in stored order."""
    return [int(f["fold"]) for f in wf.get("folds", []) if f.get("fold") is not None]


def scope(wf: dict, key: str | int) -> dict:
    """The TOTAL scope or fold ``key`` (int or its string). Raises ReportError for an unknown fold."""
    if key in (TOTAL, None, ""):
        return wf.get("total") or {}
    try:
        number = int(key)
    except (TypeError, ValueError) as exc:
        raise ReportError(f"fold: not a fold number: {key!r}") from exc
    for f in wf.get("folds", []):
        if f.get("fold") == number:
            return f
    raise ReportError(f"fold: run has no fold {number}")


def model_names(wf: dict) -> list[str]:
    """Models in ``params["models"]`` order, then any other model a fold holds."""
    names = list((wf.get("params") or {}).get("models") or [])
    for s in [*wf.get("folds", []), wf.get("total") or {}]:
        names += [n for n in (s.get("models") or {}) if n not in names]
    return names


def agents(wf: dict, s: dict) -> list[Agent]:
    """Every agent of scope ``s``: the models, the orchestrator, then the baselines (BASELINES order)."""
    out = []
    for name in model_names(wf):
        entry = (s.get("models") or {}).get(name)
        out.append(_agent(name, MODEL, entry))
    out.append(_agent("orchestrator", ORCHESTRATOR, s.get("orchestrator")))
    baselines = s.get("baselines") or {}
    for name in [*BASELINES, *sorted(set(baselines) - set(BASELINES))]:
        if name in baselines:
            out.append(_agent(name, BASELINE, baselines[name]))
    return out


def _agent(name: str, kind: str, entry: object) -> Agent:
    if not isinstance(entry, dict):
        return Agent(name, kind, {}, "not in this fold" if entry is None else f"unreadable entry: {entry!r}"[:200])
    if "error" in entry and len(entry) == 1:
        return Agent(name, kind, {}, str(entry["error"]))
    return Agent(name, kind, entry)


def agent(wf: dict, s: dict, name: str) -> Agent:
    """Agent ``name`` of scope ``s``. Raises ReportError when the scope has none of that name."""
    for a in agents(wf, s):
        if a.name == name:
            return a
    raise ReportError(f"agent: no {name!r} in this scope")


def equity_points(figures: dict) -> tuple[list[int], list[float]]:
    """(ts ms, cumulative net bps) of an agent's ``equity``, skipping malformed or null points."""
    ts, bps = [], []
    for point in figures.get("equity") or []:
        if isinstance(point, list | tuple) and len(point) == 2 and point[0] is not None and point[1] is not None:
            ts.append(int(point[0]))
            bps.append(float(point[1]))
    return ts, bps


def _ms(iso: object) -> int | None:
    try:
        return int(datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def curve(wf: dict, s: dict, a: Agent) -> tuple[list[int], list[float]]:
    """(ts ms, cumulative net bps) of agent ``a`` in scope ``s``: its stored ``equity``, or, for an
    agent that made no trade and stored no point, a flat 0 from the scope's start to its end (the run's
    for the total), so that "did nothing" shows as a line rather than as a missing curve."""
    ts, bps = equity_points(a.figures)
    if ts or a.error or a.figures.get("trades") != 0:
        return ts, bps
    window = s if "fold" in s else (wf.get("params") or {})
    start, end = _ms(window.get("start")), _ms(window.get("end"))
    return ([start, end], [0.0, 0.0]) if start is not None and end is not None else ([], [])


def drawdown_bps(cumulative_bps: list[float]) -> list[float]:
    """(T,) drawdown of a cumulative-bps curve, bps below its running peak (>= 0); the curve starts at 0
    (flat), so a first loss is a drawdown too."""
    peak, out = 0.0, []
    for value in cumulative_bps:
        peak = max(peak, value)
        out.append(peak - value)
    return out


def agreement(wf: dict, s: dict, a: str, b: str) -> float | None:
    """Share (0..1) of the scope's trades of ``a`` whose entry time ``b`` also traded on the same
    side; None when either has no trades table. Only trades are stored (not every sample's action),
    so this is agreement on the entries of ``a``, not over all samples."""
    ta = (agent(wf, s, a).figures.get("trades_table") or [])
    tb = (agent(wf, s, b).figures.get("trades_table") or [])
    if not ta or not tb:
        return None
    sides = {t.get("entry_ms"): t.get("side") for t in tb}
    return sum(1 for t in ta if sides.get(t.get("entry_ms")) == t.get("side")) / len(ta)


def legacy_summary(wf: dict) -> dict:
    """What the older shape still tells: model, folds and its per-fold rows (test window, samples,
    accuracy, trades, PnL bps, buy-and-hold bps), for the note on the page."""
    rows = []
    for f in wf.get("folds") or []:
        if not isinstance(f, dict):
            continue
        test = f.get("test") or [None, None]
        rows.append({"fold": f.get("fold"), "test_start_ms": test[0] if len(test) > 0 else None,
                     "test_end_ms": test[1] if len(test) > 1 else None, "n_test": f.get("n_test"),
                     "accuracy": f.get("accuracy"), "trades": f.get("trades"), "pnl_bps": f.get("pnl_bps"),
                     "buy_and_hold_bps": f.get("buy_and_hold_bps")})
    return {"model": wf.get("model") or (wf.get("params") or {}).get("model"), "folds": rows,
            "aggregate": wf.get("aggregate") or {}}
