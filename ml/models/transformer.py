"""Frame-sequence transformer: attention over the last ``seq_len`` seconds of 1s candles and COB.

One token per exchange second: the normalized ETH 1s candle (5), the BTC 1s candle (5) and the
COB row (87: bucket sizes, imbalance and its moving averages), so 97 features per token.
The model reads the raw tail of each component (``components[name][-seq_len:]``) and normalizes
that tail itself with :mod:`ml.features.normalize` (prices relative to the tail's last close,
volume relative to the tail's mean), so training windows cut from a short recording equal the
live input exactly.

What is trained today: ~8 minutes (480 s) of Binance USD-M ETHUSDT/BTCUSDT order-book recording
(2024-07-18/19), the only 1s + COB data besides the replayed spot session (kept out of sample).
That is a smoke-level training: the weights run and are shaped right, their forecasts are weak.

    tokens (B, T, 97) -> BatchNorm (per feature) -> Linear -> + position embedding  (B, T, D)
    -> [LayerNorm -> self-attention -> + ; LayerNorm -> MLP -> +] x L -> LayerNorm
    -> newest token = hidden (B, D) -> Linear -> logits (B, 3) [BUY, SELL, HOLD]
                                     -> Linear -> returns (B, len(horizons_s)) in bps
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.features.base_input import COMPONENT_SHAPES, WINDOW, BaseDataInput, IncompleteInputError
from ml.features.normalize import normalize_candles, normalize_cob
from ml.models.config import ConfigDict
from ml.models.device import model_device
from ml.models.output import ACTIONS, ModelOutput

logger = logging.getLogger(__name__)

MODEL_NAME = "transformer"
BPS = 1e4
SEQUENCE_COMPONENTS = ("primary_1s", "reference_1s", "cob")


@dataclass(frozen=True)
class TransformerConfig(ConfigDict):
    """Architecture and labels; saved in every checkpoint.

    Attributes:
        seq_len: seconds (tokens) read, the newest last (T <= 300).
        d_model, n_heads, n_layers, mlp_ratio, dropout: transformer size (D, heads, L).
        horizons_s: horizons (s) of the predicted-return head; 60 -> ModelOutput "1m".
        label_horizon_s: horizon (s) of the BUY/SELL/HOLD label.
        label_threshold: fractional move beyond which the label is BUY/SELL (5 bps: a direction
            label, not a fee-covering trade; 1-minute moves rarely cover a 0.2% round trip).
        version: copied into ModelOutput.model_version.
    """

    seq_len: int = 60
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 2
    mlp_ratio: int = 2
    dropout: float = 0.1
    horizons_s: tuple[int, ...] = (60,)
    label_horizon_s: int = 60
    label_threshold: float = 0.0005
    version: str = "seq-tf-1"

    def __post_init__(self) -> None:
        if not 1 <= self.seq_len <= WINDOW:
            raise ValueError(f"seq_len must be in 1..{WINDOW}, got {self.seq_len}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if not self.horizons_s or any(h % 60 for h in self.horizons_s):
            raise ValueError(f"horizons_s must be whole minutes, got {self.horizons_s}")

    @property
    def n_features(self) -> int:
        return sum(COMPONENT_SHAPES[n][1] for n in SEQUENCE_COMPONENTS)  # 97




class SelfAttention(nn.Module):
    """Multi-head self-attention over all tokens (every token is in the past: no mask)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """(B, T, D) -> (B, T, D); with ``last_only`` the newest token's output alone, (B, 1, D):
        its query attends to every key, the other queries are not computed."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)  # 3 x (B, T, D)
        if last_only:
            q = q[:, -1:]
        h = self.n_heads
        q = q.reshape(b, q.shape[1], h, d // h).transpose(1, 2)  # (B, h, T or 1, d/h)
        k, v = (z.reshape(b, t, h, d // h).transpose(1, 2) for z in (k, v))  # (B, h, T, d/h)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, q.shape[2], d))


class Block(nn.Module):
    """Pre-norm transformer block (nanoGPT layout)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model)
        self.attn = SelfAttention(config)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, config.mlp_ratio * config.d_model), nn.GELU(),
            nn.Linear(config.mlp_ratio * config.d_model, config.d_model), nn.Dropout(config.dropout))

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """(B, T, D) -> (B, T, D), or (B, 1, D) for the newest token alone (``last_only``)."""
        x = (x[:, -1:] if last_only else x) + self.attn(self.ln1(x), last_only)
        return x + self.mlp(self.ln2(x))


class FrameTransformer(nn.Module):
    """Classifier [BUY, SELL, HOLD] plus return regressor over a (B, T, 97) token sequence."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.input_norm = nn.BatchNorm1d(config.n_features)
        self.embed = nn.Linear(config.n_features, config.d_model)
        self.position = nn.Parameter(torch.zeros(config.seq_len, config.d_model))
        self.blocks = nn.Sequential(*[Block(config) for _ in range(config.n_layers)])
        self.ln_f = nn.LayerNorm(config.d_model)
        self.classifier = nn.Linear(config.d_model, len(ACTIONS))
        self.returns = nn.Linear(config.d_model, len(config.horizons_s))
        nn.init.normal_(self.position, std=0.02)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """tokens (B, T, 97) -> logits (B, 3), returns (B, len(horizons_s)) bps, hidden (B, D)."""
        x = self.input_norm(tokens.transpose(1, 2)).transpose(1, 2)  # (B, T, F)
        x = self.embed(x) + self.position  # (B, T, D)
        *inner, last = self.blocks
        for block in inner:
            x = block(x)
        # Only the newest second is read out, so the last block computes its token alone (its
        # query over every key; the same values as the full block's last row, to float rounding).
        hidden = self.ln_f(last(x, last_only=True))[:, -1]  # (B, D)
        return self.classifier(hidden), self.returns(hidden), hidden


def sequence_tokens(components: dict[str, np.ndarray], seq_len: int, *, cob_normalized: bool = False) -> np.ndarray:
    """Normalized tokens from raw component windows.

    Args:
        components: primary_1s (..., >=T, 5), reference_1s (..., >=T, 5), cob (..., >=T, 87),
            raw values as in BaseDataInput; only the last ``seq_len`` rows are read.
        cob_normalized: the cob rows are ``normalize_cob`` output already (it works row by row,
            so a caller may normalize each frame once for many windows: ``ml.backtest.batch``).

    Returns:
        float32 (..., T, 97): normalize_candles of each candle tail | normalize_cob of the COB tail.
    """
    return np.concatenate([
        normalize_candles(components["primary_1s"][..., -seq_len:, :]),
        normalize_candles(components["reference_1s"][..., -seq_len:, :]),
        components["cob"][..., -seq_len:, :] if cob_normalized else normalize_cob(components["cob"][..., -seq_len:, :]),
    ], axis=-1)


def predict(model: FrameTransformer, inputs: BaseDataInput, *, min_completeness: float = 0.9) -> ModelOutput:
    """Run the transformer on one BaseDataInput (batch 1, the model's device; eval mode).

    Returns:
        ModelOutput with probs, hidden (D,), predicted_returns {"1m": fraction, ...} and
        metadata ts, latency_ms, completeness of the used tails.

    Raises:
        InputShapeError: the input does not match the layout.
        IncompleteInputError: a used tail has fewer than ``min_completeness`` rows present.
    """
    start = time.perf_counter()
    inputs.validate()
    t = model.config.seq_len
    completeness = {n: float(np.mean(inputs.present[n][-t:])) for n in SEQUENCE_COMPONENTS}
    low = {n: round(v, 4) for n, v in completeness.items() if v < min_completeness}
    if low:
        raise IncompleteInputError(f"completeness of the last {t} s below {min_completeness}: {low}")
    tokens = torch.from_numpy(sequence_tokens(inputs.components, t)).unsqueeze(0)  # (1, T, 97)
    model.eval()
    with torch.inference_mode():
        logits, returns, hidden = model(tokens.to(model_device(model)))
        probs = torch.softmax(logits, dim=-1)[0].double().cpu().numpy()
        returns = returns[0].double().cpu().numpy() / BPS
    return ModelOutput.from_probs(
        model_name=MODEL_NAME, model_version=model.config.version, probs=probs / probs.sum(),
        hidden=hidden[0].cpu().numpy().astype(np.float32),
        predicted_returns={f"{h // 60}m": float(r) for h, r in zip(model.config.horizons_s, returns, strict=True)},
        metadata={"ts": inputs.ts, "symbol": inputs.symbol, "latency_ms": (time.perf_counter() - start) * 1000.0,
                  "completeness": completeness},
    )
