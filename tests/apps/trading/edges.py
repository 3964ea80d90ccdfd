"""Models that honour the edge contract, for the tests that need a session to trade.

The checkpoints the tests train (and old ones) carry no ``metadata["edge_bps"]``, so the desk
gives them weight 0 and holds. :func:`give_models_edges` makes every model output carry a known
calibrated edge derived from its own probabilities before the desk's mixture sees it:

    edge_bps[BUY] = EDGE_PER_PROB_BPS * (P(BUY) - P(SELL)),  edge_bps[SELL] = -edge_bps[BUY],

net of a COST_BPS round trip over HORIZON_MIN minutes. With the "equal" gate and a margin of 0 the
desk then acts on the likelier of BUY and SELL whenever they differ, as the old zero thresholds did.
Both backtest paths (per second and fast) go through ``TradingDesk.mixture``, so they stay equal.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from apps.trading.desk import TradingDesk
from ml.models.output import ModelOutput

EDGE_PER_PROB_BPS = 100.0
COST_BPS = 20.0
HORIZON_MIN = 1


def with_edges(outputs: Mapping[str, ModelOutput]) -> dict[str, ModelOutput]:
    """Copies of ``outputs`` with ``edge_bps``, ``cost_bps`` and ``horizon_min`` (module docstring)."""
    out = {}
    for name, o in outputs.items():
        buy = EDGE_PER_PROB_BPS * (o.probs["BUY"] - o.probs["SELL"])
        metadata = {**o.metadata, "edge_bps": {"BUY": buy, "SELL": -buy}, "cost_bps": COST_BPS,
                    "horizon_min": HORIZON_MIN}
        out[name] = dataclasses.replace(o, metadata=metadata)
    return out


def give_models_edges(monkeypatch) -> None:
    """Make every desk's mixture see :func:`with_edges` of the models' outputs (for one test)."""
    mixture = TradingDesk.mixture

    def mixture_with_edges(self, outputs, ts, mid):
        return mixture(self, with_edges(outputs), ts, mid)

    monkeypatch.setattr(TradingDesk, "mixture", mixture_with_edges)
