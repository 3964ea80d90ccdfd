"""DQN agent: a dueling Q-network over the same BaseDataInput candle windows as the CNN.

Actions are the ModelOutput ACTIONS [BUY, SELL, HOLD]. A Q-value is the expected paper PnL in
basis points (1e-4 of the notional) of taking the action now and holding it ``horizon_min``
minutes, after Binance taker fees on both legs, plus the discounted value of the state after
(see ml/training/dqn_train.py for the reward and the training loop).

What is trained today: like the CNN, ``primary_1m``, ``primary_1h`` and ``primary_1d`` only,
the components with months of recorded history.

    per component:  normalized (B, 300, C) -> [mean of ``pooled_length`` equal chunks |
                    last ``recent_rows`` rows] = (B, (P + R) * C) -> LayerNorm -> Linear -> GELU  (B, E)
    trunk:          concat (B, K*E) -> Linear -> GELU = hidden (B, H)
    dueling heads:  value V (B, 1), advantage A (B, 3);  Q = V + A - mean(A)  (B, 3) in bps

The chunk means and last rows (``summarize``) have no weights, so training computes them once
per distinct window and trains the rest (``q_from_summary``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.features.base_input import COMPONENT_SHAPES, WINDOW, BaseDataInput
from ml.models.config import ConfigDict, check_components
from ml.models.device import candle_batch
from ml.models.output import ACTIONS, ModelOutput

logger = logging.getLogger(__name__)

MODEL_NAME = "dqn"
BPS = 1e4  # rewards and Q-values are in basis points of the notional


@dataclass(frozen=True)
class DqnConfig(ConfigDict):
    """Architecture, reward and policy temperature; saved in every checkpoint.

    Attributes:
        components: BaseDataInput components the Q-network reads.
        pooled_length: equal chunks each 300-row window is averaged into (P; must divide 300).
        recent_rows: newest rows kept as they are (R).
        encoder_size: per-component embedding (E). hidden_size: trunk size (H), ModelOutput.hidden.
        horizon_min: minutes a position is held (the step of the decision process).
        fee: taker fee per side (fraction; Binance spot 0.1%), charged on entry and exit.
        gamma: discount per step (one step = ``horizon_min``).
        temperature_bps: softmax temperature turning Q-values (bps) into action probabilities.
        version: copied into ModelOutput.model_version.
    """

    components: tuple[str, ...] = ("primary_1m", "primary_1h", "primary_1d")
    pooled_length: int = 10
    recent_rows: int = 8
    encoder_size: int = 32
    hidden_size: int = 64
    horizon_min: int = 5
    fee: float = 0.001
    gamma: float = 0.5
    temperature_bps: float = 5.0
    version: str = "dqn-duel-1"

    def __post_init__(self) -> None:
        check_components(self.components)
        if WINDOW % self.pooled_length or not 1 <= self.recent_rows <= WINDOW:
            raise ValueError(f"pooled_length must divide {WINDOW} and recent_rows be in 1..{WINDOW}")
        if not 0.0 <= self.gamma < 1.0 or self.temperature_bps <= 0:
            raise ValueError("gamma must be in [0, 1) and temperature_bps > 0")




def summarize(x: torch.Tensor, pooled_length: int, recent_rows: int) -> torch.Tensor:
    """Chunk means and newest rows of windows (B, T, C) -> (B, (P + R) * C); no weights."""
    b, t, c = x.shape
    pooled = x.reshape(b, pooled_length, t // pooled_length, c).mean(dim=2)  # (B, P, C)
    return torch.cat([pooled, x[:, -recent_rows:]], dim=1).flatten(1)  # (B, (P+R)*C)


class QNetwork(nn.Module):
    """Dueling Q-network [BUY, SELL, HOLD] over the configured components."""

    def __init__(self, config: DqnConfig) -> None:
        super().__init__()
        self.config = config
        width = {n: (config.pooled_length + config.recent_rows) * COMPONENT_SHAPES[n][1] for n in config.components}
        self.encoders = nn.ModuleDict({
            n: nn.Sequential(nn.LayerNorm(w), nn.Linear(w, config.encoder_size), nn.GELU())
            for n, w in width.items()})
        self.trunk = nn.Sequential(
            nn.Linear(config.encoder_size * len(config.components), config.hidden_size), nn.GELU())
        self.value = nn.Linear(config.hidden_size, 1)
        self.advantage = nn.Linear(config.hidden_size, len(ACTIONS))

    def summarize(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weight-free part: component -> (B, (P + R) * C)."""
        c = self.config
        return {n: summarize(x[n], c.pooled_length, c.recent_rows) for n in c.components}

    def q_from_summary(self, s: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Q (B, 3) bps, value (B,) bps, hidden (B, H) from :meth:`summarize` output."""
        z = torch.cat([self.encoders[n](s[n]) for n in self.config.components], dim=1)  # (B, K*E)
        hidden = self.trunk(z)  # (B, H)
        value = self.value(hidden)  # (B, 1)
        adv = self.advantage(hidden)  # (B, 3)
        return value + adv - adv.mean(dim=1, keepdim=True), value[:, 0], hidden

    def forward(self, x: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: component -> normalized (B, 300, C). Returns Q (B, 3), value (B,), hidden (B, H)."""
        return self.q_from_summary(self.summarize(x))


def q_to_probs(q: torch.Tensor, temperature_bps: float) -> torch.Tensor:
    """Boltzmann policy over Q-values (..., 3) in bps: softmax(Q / temperature)."""
    return torch.softmax(q / temperature_bps, dim=-1)


def predict(model: QNetwork, inputs: BaseDataInput, *, min_completeness: float = 0.9) -> ModelOutput:
    """Run the Q-network on one BaseDataInput (batch 1, the model's device; eval mode).

    Returns:
        ModelOutput: probs = softmax(Q / temperature); predicted_returns
        {"<horizon>m": (Q_BUY - Q_SELL) / 2 / 1e4}, the expected fractional return over the
        horizon (fees and the next-state value are the same for both sides and cancel);
        metadata: q_values and value (bps), ts, latency_ms, completeness of used components.

    Raises:
        InputShapeError: the input does not match the layout.
        IncompleteInputError: a used component is below ``min_completeness``.
    """
    start = time.perf_counter()
    batch = candle_batch(model, inputs, min_completeness)  # name -> (1, 300, C)
    model.eval()
    with torch.inference_mode():
        q, value, hidden = model(batch)
        probs = q_to_probs(q, model.config.temperature_bps)[0].double().cpu().numpy()  # (3,)
        q = q[0].double().cpu().numpy()
    buy, sell = ACTIONS.index("BUY"), ACTIONS.index("SELL")
    completeness = inputs.completeness()
    return ModelOutput.from_probs(
        model_name=MODEL_NAME, model_version=model.config.version, probs=probs / probs.sum(),
        hidden=hidden[0].cpu().numpy().astype(np.float32),
        predicted_returns={f"{model.config.horizon_min}m": float((q[buy] - q[sell]) / 2.0 / BPS)},
        metadata={
            "ts": inputs.ts, "symbol": inputs.symbol,
            "q_values": {a: float(v) for a, v in zip(ACTIONS, q, strict=True)},
            "value": float(value[0]),
            "latency_ms": (time.perf_counter() - start) * 1000.0,
            "completeness": {n: completeness[n] for n in batch},
        },
    )


def huber_td_loss(q_taken: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Importance-weighted Huber loss between Q(s, a) (B,) and TD targets (B,), both in bps."""
    return (weights * F.smooth_l1_loss(q_taken, target, reduction="none", beta=10.0)).mean()
