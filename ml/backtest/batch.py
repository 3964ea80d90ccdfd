"""Batch inference and book snapshots for the backtest's fast path (``apps.backtest.fast``).

The fast path replays a chunk of seconds first, then runs every model once over the chunk, then
decides second by second. Model outputs never depend on earlier outputs or decisions (no model
reads ``BaseDataInput.last_outputs``), so computing them ahead of the decisions changes nothing.

:func:`predict_many` gives, for a list of BaseDataInputs, what ``spec.predict`` gives one by one:

- models that read only whole candle windows of 1m/1h/1d (the CNN and the DQN as configured
  today) see the same input for every second of a minute: the inputs are grouped by the exact
  bytes of the arrays the model reads (values and present masks) and ``spec.predict`` runs once
  per group at batch 1, so every output is bit-for-bit the per-second one;
- the transformer reads the last ``seq_len`` seconds, new every second: its tokens are stacked
  into (B, T, 97) and run in batches. A batched matrix product may round differently from a
  batch of one (a different kernel blocking), so probabilities agree with the per-second path to
  about 1e-6, not bit for bit (tests/apps/backtest/test_fast_path.py measures it).

Anything else (another model family, a CNN configured with 1 s components) falls back to
``spec.predict`` per input.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import torch

from ml.features.base_input import BaseDataInput, IncompleteInputError, InputError
from ml.features.normalize import normalize_cob
from ml.models import transformer
from ml.models.device import model_device
from ml.models.output import ModelOutput
from ml.models.specs import spec_for

logger = logging.getLogger(__name__)

SLOW_COMPONENTS = ("primary_1m", "primary_1h", "primary_1d")
# Rows per forward pass, always full (zero rows pad the last one). The per-row cost is flat from
# 16 to 256 rows on this CPU (~140 us at 1 thread), so a small batch only cuts the padding: at
# most 31 wasted rows per chunk instead of 255.
TRANSFORMER_BATCH = 32

Result = ModelOutput | InputError


def predict_many(name: str, model: torch.nn.Module, inputs: Sequence[BaseDataInput]) -> list[Result]:
    """One result per input, in order: the ModelOutput ``spec_for(name).predict`` returns, or the
    InputError it raises (not raised here). Raises KeyError for an unknown model name."""
    spec = spec_for(name)
    if not inputs:
        return []
    if name == transformer.MODEL_NAME:
        return _transformer_many(model, inputs)
    components = tuple(getattr(model.config, "components", ()))
    if components and set(components) <= set(SLOW_COMPONENTS):
        return _grouped(spec.predict, model, inputs, components)
    return [_one(spec.predict, model, x) for x in inputs]


def _one(predict, model, x: BaseDataInput) -> Result:
    try:
        return predict(model, x)
    except InputError as exc:
        return exc


def _grouped(predict, model, inputs: Sequence[BaseDataInput], components: tuple[str, ...]) -> list[Result]:
    """``predict`` once per distinct (values, present) of ``components``; outputs re-stamped per second."""
    cache: dict[bytes, Result] = {}
    out: list[Result] = []
    for x in inputs:
        key = b"".join(x.components[n].tobytes() + x.present[n].tobytes() for n in components)
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = _one(predict, model, x)
            out.append(hit)
        else:
            out.append(_restamp(hit, x) if isinstance(hit, ModelOutput) else hit)
    return out


def _restamp(output: ModelOutput, x: BaseDataInput) -> ModelOutput:
    """The same prediction for another second with an identical input (its own ts and symbol)."""
    meta = {**output.metadata, "ts": x.ts, "symbol": x.symbol, "latency_ms": 0.0}
    return ModelOutput(output.model_name, output.model_version, output.probs, output.action, output.confidence,
                       output.predicted_returns, output.hidden, meta)


def _transformer_many(model: transformer.FrameTransformer, inputs: Sequence[BaseDataInput],
                      min_completeness: float = 0.9) -> list[Result]:
    """``transformer.predict`` over many inputs: the same checks per input, batched forward passes."""
    t = model.config.seq_len
    out: list[Result | None] = [None] * len(inputs)
    ok, completeness = [], {}
    for i, x in enumerate(inputs):
        try:
            x.validate()
        except InputError as exc:
            out[i] = exc
            continue
        comp = {n: float(np.mean(x.present[n][-t:])) for n in transformer.SEQUENCE_COMPONENTS}
        low = {n: round(v, 4) for n, v in comp.items() if v < min_completeness}
        if low:
            out[i] = IncompleteInputError(f"completeness of the last {t} s below {min_completeness}: {low}")
            continue
        ok.append(i)
        completeness[i] = comp
    model.eval()
    device = model_device(model)
    cob = _NormalizedCob()
    for lo in range(0, len(ok), TRANSFORMER_BATCH):
        idx = ok[lo:lo + TRANSFORMER_BATCH]
        start = time.perf_counter()
        # Always a full batch (zero rows pad the last one): a row's result then never depends on
        # how many seconds share its batch (a truncated run must decide as the full run did).
        tails = {n: _padded([inputs[i].components[n][-t:] for i in idx]) for n in ("primary_1s", "reference_1s")}
        # normalized once per frame; the zero rows that pad the batch are normalize_cob of zeros
        tails["cob"] = _padded([cob.tail(inputs[i].components["cob"], t) for i in idx])
        tokens = torch.from_numpy(transformer.sequence_tokens(tails, t, cob_normalized=True))  # (B, T, 97)
        with torch.inference_mode():
            logits, returns, hidden = model(tokens.to(device))
            probs = torch.softmax(logits, dim=-1).double().cpu().numpy()  # (B, 3)
            returns = returns.double().cpu().numpy() / transformer.BPS  # (B, len(horizons_s))
            hidden = hidden.cpu().numpy().astype(np.float32)  # (B, D)
        latency = (time.perf_counter() - start) * 1000.0 / len(idx)
        for j, i in enumerate(idx):
            x = inputs[i]
            out[i] = ModelOutput.from_probs(
                model_name=transformer.MODEL_NAME, model_version=model.config.version, probs=probs[j] / probs[j].sum(),
                hidden=hidden[j],
                predicted_returns={f"{h // 60}m": float(r) for h, r in zip(model.config.horizons_s, returns[j], strict=True)},
                metadata={"ts": x.ts, "symbol": x.symbol, "latency_ms": latency, "completeness": completeness[i]})
    return out  # type: ignore[return-value]


class _NormalizedCob:
    """``normalize_cob`` of COB window tails, each frame normalized once.

    ``normalize_cob`` works row by row (each frame against its own total), so the normalized tail
    of a window is the tail of the normalized frames. The fast path's windows are views of one
    timeline per chunk (``ml.features.sliding``): the timeline is normalized once (~1,100 rows
    instead of 60 per second) and each tail is a view of it, with the same values bit for bit (the
    same per-row operations). A window that is no such view is normalized on its own."""

    def __init__(self) -> None:
        self._done: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id(base) -> (base, normalized)

    def tail(self, window: np.ndarray, t: int) -> np.ndarray:
        """float32 (t, 87): ``normalize_cob(window[-t:])``."""
        base = window.base
        if (not isinstance(base, np.ndarray) or base.ndim != 2 or not base.flags.c_contiguous
                or window.dtype != base.dtype or window.strides != base.strides or window.shape[1] != base.shape[1]):
            return normalize_cob(window[-t:])
        start, rem = divmod(window.ctypes.data - base.ctypes.data, base.strides[0])
        if rem or not 0 <= start <= base.shape[0] - window.shape[0]:
            return normalize_cob(window[-t:])
        entry = self._done.get(id(base))
        if entry is None or entry[0] is not base:
            entry = self._done[id(base)] = (base, normalize_cob(base))
        end = start + window.shape[0]
        return entry[1][end - t:end]


_EMPTY = (np.zeros(0), np.zeros(0))


def _padded(rows: list[np.ndarray]) -> np.ndarray:
    """(TRANSFORMER_BATCH, T, C) float32: ``rows`` then zeros."""
    out = np.zeros((TRANSFORMER_BATCH, *rows[0].shape), dtype=np.float32)
    out[:len(rows)] = np.stack(rows)
    return out


class FrozenBook:
    """A read-only snapshot of a book (``OrderBook`` / ``GridBook``) at the close of a second: the
    first ``depth`` levels per side and the touch. Answers the ``BookView`` queries the desk and the
    paper client make (``levels(side, depth)`` up to the snapshot's depth; prices USD, sizes base
    units, best first). Raises ValueError for a deeper ``levels`` request than was kept."""

    __slots__ = ("_bid", "_ask", "_mid", "_best_bid", "_best_ask", "_spread", "depth")

    def __init__(self, book, depth: int) -> None:
        self.depth = depth
        if hasattr(book, "level_arrays"):  # GridBook: two float64 arrays per side, no tuples
            self._bid = tuple(a.copy() for a in book.level_arrays("bid", depth))  # copies: not views of all levels
            self._ask = tuple(a.copy() for a in book.level_arrays("ask", depth))
        else:
            self._bid = tuple(np.asarray(v, dtype=np.float64) for v in zip(*book.levels("bid", depth), strict=True)) or _EMPTY
            self._ask = tuple(np.asarray(v, dtype=np.float64) for v in zip(*book.levels("ask", depth), strict=True)) or _EMPTY
        self._mid, self._spread = book.mid(), book.spread()
        self._best_bid, self._best_ask = book.best_bid(), book.best_ask()

    def levels(self, side: str, depth: int | None = None) -> list[tuple[float, float]]:
        if depth is None or depth > self.depth:
            raise ValueError(f"snapshot keeps {self.depth} levels, {depth} asked")
        prices, sizes = self._bid if side == "bid" else self._ask
        return list(zip(prices[:depth].tolist(), sizes[:depth].tolist(), strict=True))

    def mid(self) -> float | None:
        return self._mid

    def best_bid(self) -> float | None:
        return self._best_bid

    def best_ask(self) -> float | None:
        return self._best_ask

    def spread(self) -> float | None:
        return self._spread
