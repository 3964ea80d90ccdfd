"""Batch inference and book snapshots for the backtest's fast path (``apps.backtest.fast``).

The fast path replays a chunk of seconds first, then runs every model once over the chunk, then
decides second by second. A model's output depends on its input and, through the cascade
(``ml.models.live``: cnn -> transformer -> dqn), on the outputs of the models before it at the
SAME second, never on earlier outputs or decisions; so computing them ahead of the decisions
changes nothing, as long as the models are called in cascade order over the same inputs.

:func:`predict_many` gives, for a list of BaseDataInputs, what ``spec.predict`` gives one by one:
the input groups of every input (``ml.models.live.model_groups``, the indicators and pivots
computed where the input was built without them) are stacked and run in batches of
:data:`BATCH` rows. Each output is recorded in its input's ``last_outputs`` (as
``apps.predictions.inference.inference_run`` does), which is where the next model of the cascade
reads it. A batched matrix product may round differently from a batch of one (a different kernel
blocking), so probabilities agree with the per-second path to about 1e-6, not bit for bit
(tests/apps/backtest/test_fast_path.py measures it).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import torch

from ml.features.base_input import BaseDataInput, InputError
from ml.models import live
from ml.models.output import ModelOutput
from ml.models.specs import spec_for

logger = logging.getLogger(__name__)

# Rows per forward pass, always full (masked zero rows pad the last one): a row's result then
# never depends on how many seconds share its batch (a truncated run decides as the full run did).
BATCH = 32

Result = ModelOutput | InputError


def predict_many(name: str, model: torch.nn.Module, inputs: Sequence[BaseDataInput]) -> list[Result]:
    """One result per input, in order: the ModelOutput ``spec_for(name).predict`` returns, or the
    InputError it raises (not raised here); each output is also recorded in its input's
    ``last_outputs`` (module docstring). Call it in cascade order over the same inputs.

    Raises:
        KeyError: an unknown model name. ValueError: a model without calibration.
    """
    spec_for(name)
    out: list[Result | None] = [None] * len(inputs)
    rows: list[tuple[int, dict[str, np.ndarray], dict[str, bool]]] = []
    for i, x in enumerate(inputs):
        try:
            x.validate()
            values, mask = live.model_groups(model, x)
            live.check_present(model, x.ts, mask)
        except InputError as exc:
            out[i] = exc
            continue
        rows.append((i, values, mask))
    model.eval()
    for lo in range(0, len(rows), BATCH):
        part = rows[lo:lo + BATCH]
        start = time.perf_counter()
        values = {n: _padded([v[n] for _, v, _ in part]) for n in model.names}
        masks = {n: _padded([np.array(m[n]) for _, _, m in part]) for n in model.names}
        raw = {k: v[:len(part)] for k, v in live.forward_groups(model, values, masks).items()}
        latency = (time.perf_counter() - start) * 1000.0 / len(part)
        outs = live.outputs_from_raw(model, raw, [inputs[i] for i, _, _ in part], [m for _, _, m in part], latency)
        for (i, _, _), output in zip(part, outs, strict=True):
            out[i] = output
            live.record_output(inputs[i], output)
    return out  # type: ignore[return-value]


def _padded(rows: list[np.ndarray]) -> np.ndarray:
    """(BATCH, *shape): ``rows`` then zeros (False for masks)."""
    first = np.asarray(rows[0])
    out = np.zeros((BATCH, *first.shape), dtype=first.dtype)
    out[:len(rows)] = np.stack(rows)
    return out


_EMPTY = (np.zeros(0), np.zeros(0))


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
