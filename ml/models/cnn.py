"""Multi-timeframe 1-D CNN: one convolutional encoder per input component, one MLP head.

What is trained today: the shipped checkpoint uses ``primary_1m``, ``primary_1h`` and
``primary_1d`` only, because those are the only components with months of recorded history
(ml/data/history.py). The ``primary_1s``, ``reference_1s`` and ``cob`` branches exist and can be
switched on in :class:`CnnConfig`, but the recordings cover ~11 minutes of 1s candles and COB
frames, far too little to train on, so they are off by default.

    per component:  (B, 300, C) -> BatchNorm -> [Conv1d(stride 2) -> GELU] x L
                    -> [adaptive avg pool to P steps | last step] -> Linear -> GELU  (B, E)
    head:           concat (B, K*E) -> Linear -> GELU -> Dropout  = hidden (B, H)
                    -> Linear -> logits (B, 3) in ACTIONS order [BUY, SELL, HOLD]
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.features.base_input import COMPONENT_SHAPES, BaseDataInput
from ml.models.config import ConfigDict, check_components
from ml.models.device import candle_batch
from ml.models.output import ACTIONS, ModelOutput

logger = logging.getLogger(__name__)

MODEL_NAME = "cnn"


@dataclass(frozen=True)
class CnnConfig(ConfigDict):
    """Architecture and label definition; saved in every checkpoint, enough to rebuild the model.

    Attributes:
        components: BaseDataInput components the model reads, each with its own encoder.
        channels: output channels of each Conv1d layer.
        kernel_sizes: kernel size of each Conv1d layer (same length as ``channels``).
        pooled_length: time steps kept by the adaptive average pool (P).
        encoder_size: per-component embedding size (E).
        hidden_size: hidden vector size (H), exported in ModelOutput.hidden.
        dropout: dropout probability in the head.
        horizon_min: label horizon in minutes (what BUY/SELL predict, see ml/training).
        label_threshold: fractional return beyond which the label is BUY/SELL (default: 2 x
            0.1% Binance spot taker fee, i.e. a round trip).
        version: free-form version string, copied into ModelOutput.model_version.
    """

    components: tuple[str, ...] = ("primary_1m", "primary_1h", "primary_1d")
    channels: tuple[int, ...] = (16, 32)
    kernel_sizes: tuple[int, ...] = (5, 5)
    pooled_length: int = 8
    encoder_size: int = 32
    hidden_size: int = 64
    dropout: float = 0.2
    horizon_min: int = 5
    label_threshold: float = 0.002
    version: str = "cnn-mtf-1"

    def __post_init__(self) -> None:
        check_components(self.components)
        if len(self.channels) != len(self.kernel_sizes) or not self.channels:
            raise ValueError("channels and kernel_sizes must be non-empty and the same length")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")




class ConvEncoder(nn.Module):
    """Encode one component window (B, T, C_in) into (B, encoder_size)."""

    def __init__(self, in_channels: int, config: CnnConfig) -> None:
        super().__init__()
        # Learned input scaling: the normalized features have no fitted state of their own.
        self.input_norm = nn.BatchNorm1d(in_channels)
        layers: list[nn.Module] = []
        prev = in_channels
        for ch, k in zip(config.channels, config.kernel_sizes, strict=False):
            layers += [nn.Conv1d(prev, ch, k, stride=2, padding=k // 2), nn.GELU()]
            prev = ch
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(config.pooled_length)
        # The newest step is kept whole as well: recent candles matter most for a 5 min horizon.
        self.proj = nn.Linear(prev * (config.pooled_length + 1), config.encoder_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(x.transpose(1, 2))  # (B, C_in, T)
        h = self.convs(x)  # (B, C, T')
        feats = torch.cat([self.pool(h).flatten(1), h[:, :, -1]], dim=1)  # (B, C*(P+1))
        return F.gelu(self.proj(feats))  # (B, E)


class MultiTimeframeCNN(nn.Module):
    """Three-way classifier [BUY, SELL, HOLD] over the configured BaseDataInput components."""

    def __init__(self, config: CnnConfig) -> None:
        super().__init__()
        self.config = config
        self.encoders = nn.ModuleDict({
            name: ConvEncoder(COMPONENT_SHAPES[name][1], config) for name in config.components})
        self.hidden = nn.Sequential(
            nn.Linear(config.encoder_size * len(config.components), config.hidden_size),
            nn.GELU(),
            nn.Dropout(config.dropout),
        )
        self.classifier = nn.Linear(config.hidden_size, len(ACTIONS))

    def forward(self, x: dict[str, torch.Tensor],
                index: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Classify a batch.

        Args:
            x: component name -> (B, 300, C) normalized float32; or, for a component named in
                ``index``, (U, 300, C) distinct windows that ``index[name]`` (B,) maps each
                sample to. Training uses this: consecutive 1m samples share their 1h and 1d
                windows, which are then encoded once per batch instead of once per sample.

        Returns:
            logits (B, 3) in ACTIONS order, hidden (B, hidden_size).

        Raises:
            KeyError: a configured component is missing from ``x``.
        """
        index = index or {}
        parts = []
        for name in self.config.components:
            z = self.encoders[name](x[name])  # (B or U, E)
            parts.append(z[index[name]] if name in index else z)  # (B, E)
        hidden = self.hidden(torch.cat(parts, dim=1))  # (B, H)
        return self.classifier(hidden), hidden


def predict(model: MultiTimeframeCNN, inputs: BaseDataInput, *,
            min_completeness: float = 0.9) -> ModelOutput:
    """Run the model on one BaseDataInput (batch 1 on the model's device; puts it in eval mode).

    Args:
        min_completeness: minimum share of present rows in each component the model uses.

    Returns:
        ModelOutput with probs, action, confidence, hidden (H,), and metadata: ts (ms),
        latency_ms (this call), completeness of the used components.

    Raises:
        InputShapeError: the input does not match the layout.
        IncompleteInputError: a used component is below ``min_completeness``.
    """
    start = time.perf_counter()
    batch = candle_batch(model, inputs, min_completeness)  # name -> (1, 300, C)
    model.eval()
    with torch.inference_mode():
        logits, hidden = model(batch)
        probs = torch.softmax(logits, dim=-1)[0].double().cpu().numpy()  # (3,)
    completeness = inputs.completeness()
    return ModelOutput.from_probs(
        model_name=MODEL_NAME,
        model_version=model.config.version,
        probs=probs / probs.sum(),
        hidden=hidden[0].cpu().numpy().astype(np.float32),
        metadata={
            "ts": inputs.ts,
            "symbol": inputs.symbol,
            "latency_ms": (time.perf_counter() - start) * 1000.0,
            "completeness": {name: completeness[name] for name in batch},
        },
    )
