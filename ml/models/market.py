"""Model families that read every input group (``ml/features/groups.py``), with explicit masks.

Three families share the group table and differ in how they encode it and what they predict:

- ``cnn``: per sequence group two strided Conv1d layers, mean-pooled and newest step kept;
  per vector group a Linear; concatenated -> hidden (B, H) -> logits (B, n_horizons, 3).
- ``transformer``: each sequence group cut into ``tokens_per_group`` chunks, each chunk a token;
  each vector group one token; a learned group embedding per token, a [CLS] token, two
  pre-norm self-attention layers; the [CLS] state is the hidden (B, H) -> logits (B, n_h, 3).
- ``dqn``: per group chunk means and newest rows (no weights) -> Linear; a trunk -> hidden and a
  dueling head Q(s, a) for a in (BUY, SELL) in basis points of net return after the round trip
  (HOLD is 0 by definition: no position, no cost). Trained on the realized net return of both
  actions at the trade horizon (the offline, one-step case of Q-learning: gamma = 0).

Missing data. Every group has a presence mask per sample. The embedding of a missing group is a
learned vector of its own (``missing``), never the encoding of zeros. During training each
present group is also dropped with probability ``group_dropout`` so the model learns to do without
it (the COB, absent from the candle history, is trained on the order-book sessions).

Inputs are standardized per group and channel with statistics fitted on the present rows of
the training set (buffers ``mean_<g>``, ``std_<g>``; :meth:`MarketModel.fit_scaling`); a channel
that is constant in training is only centred, and standardized values are clipped to +-10, so a
value never seen in training (a pivot level appearing, a volume burst) cannot blow up the output.

Cross-model feeding (in this order, the same second): cnn -> transformer -> dqn. Cross-model
groups are given in ``extra`` as (name, width): ``upstream`` is the calibrated [P(BUY), P(SELL),
P(HOLD), edge BUY, edge SELL] (bps / 100) of the models before; ``cnn_hidden`` the CNN's hidden.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ml.features.groups import GROUP_SHAPES, INPUT_GROUPS, SEQUENCE_GROUPS
from ml.models.config import ConfigDict

logger = logging.getLogger(__name__)

FAMILIES = ("cnn", "transformer", "dqn")
HORIZONS_MIN = (1, 5, 15, 60)
Q_SCALE_BPS = 100.0  # the DQN head predicts in units of 100 bps
MIN_STD = 1e-4  # a channel (nearly) constant in training is centred, not scaled
Z_CLIP = 10.0  # standardized inputs are clipped to +-10 standard deviations


@dataclass(frozen=True)
class MarketConfig(ConfigDict):
    """Architecture and targets of one family; saved with every checkpoint.

    Attributes:
        family: "cnn", "transformer" or "dqn".
        groups: input groups read (default: all of ml.features.groups.INPUT_GROUPS).
        extra: cross-model groups as [name, width] pairs.
        horizons_min: label horizons (minutes) of the classification heads.
        trade_horizon_min: the horizon a trade is held (the DQN's only horizon).
        cost_bps: round-trip cost (fees both ways + spread + slippage) the labels are net of.
        embed: per-group embedding size (E); hidden: hidden state size (H).
        tokens_per_group: transformer tokens per sequence group (divides every group's rows).
        dropout: dropout in the trunk; group_dropout: chance of masking a present group in training.
        version: copied into ModelOutput.model_version.
    """

    family: str = "cnn"
    groups: tuple[str, ...] = INPUT_GROUPS
    extra: tuple[tuple[str, int], ...] = ()
    horizons_min: tuple[int, ...] = HORIZONS_MIN
    trade_horizon_min: int = 60
    cost_bps: float = 21.0
    embed: int = 24
    hidden: int = 64
    tokens_per_group: int = 3
    dropout: float = 0.1
    group_dropout: float = 0.1
    version: str = "market-1"

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        unknown = [g for g in self.groups if g not in GROUP_SHAPES]
        if unknown or not self.groups:
            raise ValueError(f"unknown input groups {unknown or '()'}; known: {list(GROUP_SHAPES)}")
        if self.trade_horizon_min not in self.horizons_min:
            raise ValueError(f"trade_horizon_min {self.trade_horizon_min} not in {self.horizons_min}")
        for g in self.groups:
            if g in SEQUENCE_GROUPS and GROUP_SHAPES[g][0] % self.tokens_per_group:
                raise ValueError(f"tokens_per_group {self.tokens_per_group} must divide {g}'s rows")

    @classmethod
    def from_dict(cls, data: dict) -> MarketConfig:
        data = dict(data)
        if "extra" in data:
            data["extra"] = [tuple(x) for x in data["extra"]]
        return super().from_dict(data)

    @property
    def extra_groups(self) -> dict[str, int]:
        return {name: int(width) for name, width in self.extra}

    @property
    def trade_index(self) -> int:
        return self.horizons_min.index(self.trade_horizon_min)


def _is_sequence(group: str) -> bool:
    return group in SEQUENCE_GROUPS


class _SequenceConv(nn.Module):
    """(B, T, C) -> (B, E): Conv1d(k5, s2) x 2, GELU, [mean over time | newest step] -> Linear."""

    def __init__(self, channels: int, embed: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(nn.Conv1d(channels, 16, 5, stride=2, padding=2), nn.GELU(),
                                   nn.Conv1d(16, 24, 5, stride=2, padding=2), nn.GELU())
        self.proj = nn.Linear(48, embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x.transpose(1, 2))  # (B, 24, T/4)
        return F.gelu(self.proj(torch.cat([h.mean(dim=2), h[:, :, -1]], dim=1)))


class _SequenceSummary(nn.Module):
    """(B, T, C) -> (B, E): means of 6 equal chunks and the newest 4 rows (no weights) -> Linear."""

    def __init__(self, rows: int, channels: int, embed: int, chunks: int = 6, recent: int = 4) -> None:
        super().__init__()
        self.chunks, self.recent = chunks, recent
        self.proj = nn.Linear((chunks + recent) * channels, embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        means = x.reshape(b, self.chunks, t // self.chunks, c).mean(dim=2)
        return F.gelu(self.proj(torch.cat([means.flatten(1), x[:, -self.recent:].flatten(1)], dim=1)))


class _SequenceTokens(nn.Module):
    """(B, T, C) -> (B, P, E): P equal chunks, each flattened -> Linear."""

    def __init__(self, rows: int, channels: int, embed: int, tokens: int) -> None:
        super().__init__()
        self.tokens = tokens
        self.proj = nn.Linear(rows // tokens * channels, embed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        return self.proj(x.reshape(b, self.tokens, (t // self.tokens) * c))


class MarketModel(nn.Module):
    """One family over the input groups (module docstring).

    ``forward(x, mask)`` takes group -> float32 (B, *shape) and group -> bool (B,) for every
    group in ``config.groups`` and ``config.extra`` and returns a dict with ``hidden`` (B, H) and
    ``logits`` (B, n_horizons, 3) in ACTIONS order [BUY, SELL, HOLD] (cnn, transformer) or ``q``
    (B, 2) expected net bps of [BUY, SELL] (dqn).
    """

    def __init__(self, config: MarketConfig) -> None:
        super().__init__()
        self.config = config
        e = config.embed
        self.names = list(config.groups) + [name for name, _ in config.extra]
        shapes = {**{g: GROUP_SHAPES[g] for g in config.groups}, **{n: (w,) for n, w in config.extra}}
        self.shapes = shapes
        for g, shape in shapes.items():
            self.register_buffer(f"mean_{g}", torch.zeros(shape[-1]))
            self.register_buffer(f"std_{g}", torch.ones(shape[-1]))
        self.missing = nn.Parameter(torch.zeros(len(self.names), e))
        encoders = {}
        for g, shape in shapes.items():
            if len(shape) == 1:
                encoders[g] = nn.Sequential(nn.Linear(shape[0], e), nn.GELU())
            elif config.family == "cnn":
                encoders[g] = _SequenceConv(shape[1], e)
            elif config.family == "dqn":
                encoders[g] = _SequenceSummary(shape[0], shape[1], e)
            else:
                encoders[g] = _SequenceTokens(shape[0], shape[1], e, config.tokens_per_group)
        self.encoders = nn.ModuleDict(encoders)
        h = config.hidden
        if config.family == "transformer":
            self.cls = nn.Parameter(torch.zeros(1, 1, e))
            n_tokens = sum(config.tokens_per_group if len(s) == 2 else 1 for s in shapes.values())
            self.position = nn.Parameter(torch.zeros(1, n_tokens + 1, e))
            layer = nn.TransformerEncoderLayer(e, nhead=4, dim_feedforward=2 * e, dropout=config.dropout,
                                               batch_first=True, norm_first=True, activation="gelu")
            self.attention = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
            self.trunk = nn.Sequential(nn.LayerNorm(e), nn.Linear(e, h), nn.GELU())
        else:
            self.trunk = nn.Sequential(nn.Linear(e * len(self.names), h), nn.GELU(), nn.Dropout(config.dropout))
        if config.family == "dqn":
            self.value = nn.Linear(h, 1)
            self.advantage = nn.Linear(h, 2)
        else:
            self.head = nn.Linear(h, 3 * len(config.horizons_min))

    def fit_scaling(self, stats: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Set the per-group, per-channel standardization: group -> (mean (C,), std (C,))."""
        for g, (mean, std) in stats.items():
            getattr(self, f"mean_{g}").copy_(mean)
            getattr(self, f"std_{g}").copy_(torch.where(std < MIN_STD, torch.ones_like(std), std))

    def _embed(self, x: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Per group (B, E) or (B, P, E) embeddings with missing groups replaced."""
        out = []
        for i, g in enumerate(self.names):
            z = ((x[g] - getattr(self, f"mean_{g}")) / getattr(self, f"std_{g}")).clamp(-Z_CLIP, Z_CLIP)
            emb = self.encoders[g](z)
            m = mask[g].to(emb.dtype).view(-1, *([1] * (emb.dim() - 1)))
            if self.training and self.config.group_dropout > 0:
                keep = (torch.rand(m.shape[0], device=m.device) >= self.config.group_dropout).to(emb.dtype)
                m = m * keep.view_as(m)
            out.append(m * emb + (1 - m) * self.missing[i].expand_as(emb))
        return out

    def forward(self, x: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        parts = self._embed(x, mask)
        if self.config.family == "transformer":
            b = parts[0].shape[0]
            tokens = torch.cat([self.cls.expand(b, -1, -1)] + [p if p.dim() == 3 else p.unsqueeze(1) for p in parts], 1)
            hidden = self.trunk(self.attention(tokens + self.position)[:, 0])
        else:
            hidden = self.trunk(torch.cat(parts, dim=1))
        if self.config.family == "dqn":
            adv = self.advantage(hidden)
            q = self.value(hidden) + adv - adv.mean(dim=1, keepdim=True)  # units of 100 bps
            return {"hidden": hidden, "q": Q_SCALE_BPS * q}
        return {"hidden": hidden, "logits": self.head(hidden).view(-1, len(self.config.horizons_min), 3)}
