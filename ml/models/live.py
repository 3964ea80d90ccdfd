"""Serving the market model families (``ml/models/market.py``) live: BaseDataInputs -> ModelOutputs.

Every family reads the input groups of ``ml/features/groups.py`` (the whole BaseDataInput, each
group with a presence mask) plus its cross-model groups, and answers with calibrated
probabilities and expected net returns (edges) at the trade horizon.

Cascade (the same second, in this order): ``cnn -> transformer -> dqn``. A later model reads
the outputs the earlier ones gave for THIS second, from ``BaseDataInput.last_outputs`` (each
model's latest output; the inference loop and ``ml.backtest.batch`` record a model's output there
before running the next one, see :func:`record_output`):

- ``upstream``: float32 (5 K,) for the K models before it (``Serving.upstream``, cascade order):
  per model [P(BUY), P(SELL), P(HOLD), edge BUY / 100, edge SELL / 100] (edges in bps), as
  ``ml.evaluation.walk_forward._upstream`` builds it for training;
- ``cnn_hidden``: float32 (64,), the CNN's hidden state (read by the DQN).

A cross-model group whose source has no output of this second (``metadata["ts"] != inputs.ts``:
skipped, disabled, or not run yet) is masked, so the model uses its learned "missing" embedding
(trained by group dropout), never a stale or zero vector read as data.

Calibration (``ml.evaluation.calibration.Calibration``) and the upstream model names travel with
the model as ``model.serving`` (:class:`Serving`), stored in the checkpoint
(``ml/models/checkpoint.py``).

ModelOutput: ``probs`` calibrated trade-horizon probabilities (ACTIONS order); ``hidden`` (H,);
``predicted_returns`` {"<h>m": expected gross return (fraction) over the trade horizon
``h``} = (edge BUY - edge SELL) / 2 (the round-trip cost cancels); ``metadata``: ``edge_bps``
{"BUY", "SELL"} (calibrated expected net return of acting, bps), ``horizon_min``, ``cost_bps``,
``groups_present`` (the groups read as data), ``upstream`` (the cross-model sources used),
``ts``, ``symbol``, ``latency_ms`` and, for the DQN, ``q_values`` {"BUY", "SELL"} (bps).
"""
from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from ml.evaluation.calibration import SIDES, Calibration, dqn_logits
from ml.features.base_input import BaseDataInput, IncompleteInputError, derived_features
from ml.features.groups import MIN_PRESENT, input_groups
from ml.models.market import MarketModel
from ml.models.output import ACTIONS, ModelOutput

logger = logging.getLogger(__name__)

CASCADE = ("cnn", "transformer", "dqn")
UPSTREAM_WIDTH = 5  # per upstream model: 3 probabilities + 2 edges (bps / 100)
BPS = 1e4


@dataclass
class Serving:
    """What a trained MarketModel needs beside its weights to serve: its calibration (fitted on
    its validation split) and the models whose same-second outputs form its ``upstream`` group,
    in cascade order."""

    calibration: Calibration
    upstream: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"calibration": self.calibration.to_dict(), "upstream": list(self.upstream)}

    @classmethod
    def from_dict(cls, data: dict) -> Serving:
        """Raises KeyError / TypeError on a malformed dict."""
        return cls(Calibration.from_dict(dict(data["calibration"])), tuple(data.get("upstream", ())))


def attach_serving(model: MarketModel, calibration: Calibration, upstream: tuple[str, ...] = ()) -> MarketModel:
    """Set ``model.serving`` and return the model. Raises ValueError when ``upstream`` does not
    match the width of the model's ``upstream`` group."""
    width = model.config.extra_groups.get("upstream", 0)
    if width != UPSTREAM_WIDTH * len(upstream):
        raise ValueError(f"upstream {list(upstream)} gives {UPSTREAM_WIDTH * len(upstream)} values, "
                         f"the model's upstream group has {width}")
    model.serving = Serving(calibration, tuple(upstream))
    return model


def serving_of(model: MarketModel) -> Serving:
    """``model.serving``. Raises ValueError for a model without one (not from a checkpoint)."""
    serving = getattr(model, "serving", None)
    if not isinstance(serving, Serving):
        raise ValueError(f"{model.config.family} model has no calibration: load it from a checkpoint")
    return serving


def upstream_features(output: ModelOutput) -> np.ndarray:
    """float32 (5,) [P(BUY), P(SELL), P(HOLD), edge BUY / 100, edge SELL / 100] of one output."""
    edge = output.metadata.get("edge_bps") or {}
    return np.array([*(output.probs[a] for a in ACTIONS), *(edge.get(s, 0.0) / 100.0 for s in SIDES)],
                    dtype=np.float32)


def cascade_groups(model: MarketModel, inputs: BaseDataInput) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
    """The model's cross-model groups at ``inputs.ts`` from ``inputs.last_outputs`` (module
    docstring): (name -> float32 (width,), name -> present)."""
    values: dict[str, np.ndarray] = {}
    mask: dict[str, bool] = {}
    ts = inputs.ts
    for name, width in model.config.extra:
        if name == "upstream":
            outs = [inputs.last_outputs.get(n) for n in serving_of(model).upstream]
            ok = all(o is not None and o.metadata.get("ts") == ts for o in outs)
            values[name] = np.concatenate([upstream_features(o) for o in outs]) if ok else np.zeros(width, np.float32)
        elif name == "cnn_hidden":
            o = inputs.last_outputs.get("cnn")
            ok = o is not None and o.metadata.get("ts") == ts and o.hidden.shape == (width,)
            values[name] = o.hidden.astype(np.float32) if ok else np.zeros(width, np.float32)
        else:
            raise ValueError(f"unknown cross-model group {name!r}")
        mask[name] = bool(ok)
    return values, mask


def ensure_derived(inputs: BaseDataInput) -> None:
    """Give ``inputs`` its indicators and pivots when it was built without them (the backtest's
    fast path builds ``derived=False``); the values equal ``build_base_data_input``'s."""
    if not inputs.indicators:
        inputs.indicators, inputs.pivots = derived_features(inputs.components)


_LAST_GROUPS: list = [None, None, None]  # [weakref to the input, its components dict, (values, mask)]


def _input_groups_once(inputs: BaseDataInput) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
    """``input_groups(inputs)``, computed once for the three models of a second (~0.5 ms each):
    the last input's groups are kept while the same input object (and components dict) comes back."""
    ref, components, cached = _LAST_GROUPS
    if ref is not None and ref() is inputs and components is inputs.components:
        return cached
    ensure_derived(inputs)
    cached = input_groups(inputs)
    _LAST_GROUPS[:] = [weakref.ref(inputs), inputs.components, cached]
    return cached


def model_groups(model: MarketModel, inputs: BaseDataInput) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
    """Every group ``model`` reads at ``inputs`` (input groups and cross-model groups):
    (name -> float32 array of its shape, name -> present). The input's groups are computed once
    per input object: an input must not be changed in place between model calls."""
    values, mask = _input_groups_once(inputs)
    extra_v, extra_m = cascade_groups(model, inputs)
    names = model.names
    return ({n: values[n] for n in names if n in values} | extra_v,
            {n: mask[n] for n in names if n in mask} | extra_m)


@torch.inference_mode()
def forward_groups(model: MarketModel, values: dict[str, np.ndarray], mask: dict[str, np.ndarray]
                   ) -> dict[str, np.ndarray]:
    """Raw outputs for a batch: values name -> (B, *shape), mask name -> bool (B,) ->
    {"hidden": (B, H), "logits": (B, n_h, 3)} or {"hidden", "q": (B, 2) bps} as float64 numpy."""
    device = next(model.parameters()).device
    x = {n: torch.from_numpy(np.ascontiguousarray(values[n], dtype=np.float32)).to(device) for n in model.names}
    m = {n: torch.from_numpy(np.asarray(mask[n], dtype=bool)).to(device) for n in model.names}
    return {k: v.double().cpu().numpy() for k, v in model(x, m).items()}


def outputs_from_raw(model: MarketModel, raw: dict[str, np.ndarray], inputs: list[BaseDataInput],
                     present: list[dict[str, bool]], latency_ms: float) -> list[ModelOutput]:
    """One calibrated ModelOutput per row of ``raw`` (module docstring)."""
    config, serving = model.config, serving_of(model)
    cal = serving.calibration
    q = raw.get("q")
    logits = dqn_logits(q) if q is not None else raw["logits"][:, config.trade_index]
    probs = cal.probs(logits)  # (B, 3)
    edge = cal.edge_bps(probs, q)  # (B, 2) bps
    horizon = f"{config.trade_horizon_min}m"
    out = []
    for i, x in enumerate(inputs):
        p = probs[i] / probs[i].sum()
        meta = {"ts": x.ts, "symbol": x.symbol, "latency_ms": latency_ms,
                "edge_bps": {s: float(edge[i, k]) for k, s in enumerate(SIDES)},
                "horizon_min": config.trade_horizon_min, "cost_bps": config.cost_bps,
                "groups_present": [g for g in model.names if present[i].get(g)],
                "upstream": [n for n in serving.upstream if present[i].get("upstream")]}
        if q is not None:
            meta["q_values"] = {s: float(q[i, k]) for k, s in enumerate(SIDES)}
        out.append(ModelOutput.from_probs(
            model_name=config.family, model_version=config.version, probs=p, hidden=raw["hidden"][i],
            predicted_returns={horizon: float((edge[i, 0] - edge[i, 1]) / 2.0 / BPS)}, metadata=meta))
    return out


def predict(model: MarketModel, inputs: BaseDataInput) -> ModelOutput:
    """One calibrated ModelOutput for one input (batch 1; module docstring).

    Raises:
        InputShapeError: a malformed input (``BaseDataInput.validate``).
        IncompleteInputError: none of the model's input groups is present.
        ValueError: a model without calibration (not loaded from a checkpoint).
    """
    start = time.perf_counter()
    inputs.validate()
    values, mask = model_groups(model, inputs)
    check_present(model, inputs.ts, mask)
    raw = forward_groups(model, {n: v[None] for n, v in values.items()}, {n: np.array([v]) for n, v in mask.items()})
    return outputs_from_raw(model, raw, [inputs], [mask], (time.perf_counter() - start) * 1000.0)[0]


def check_present(model: MarketModel, ts: int, mask: dict[str, bool]) -> None:
    """Raise IncompleteInputError when none of the model's input groups is present at ``ts``."""
    if not any(mask.get(g) for g in model.config.groups):
        raise IncompleteInputError(f"{model.config.family}: none of its {len(model.config.groups)} input groups "
                                   f"is present at {ts} (a group needs {MIN_PRESENT:.0%} of its rows real)")


def package(model: MarketModel, inputs: BaseDataInput) -> dict[str, np.ndarray]:
    """The arrays the model read, for the inference history and fine-tuning: each group's
    float32 values (its shape) and ``mask_<group>`` bool (1,) (cross-model groups included)."""
    values, mask = model_groups(model, inputs)
    return {**values, **{f"mask_{n}": np.array([m]) for n, m in mask.items()}}


def record_output(inputs: BaseDataInput, output: ModelOutput) -> None:
    """Make ``output`` the latest output of its model in ``inputs.last_outputs``, for the models
    after it in the cascade at the same second."""
    inputs.last_outputs[output.model_name] = output


def cascade_order(names) -> list[str]:
    """``names`` in cascade order (unknown names last, in their given order)."""
    names = list(names)
    return sorted(names, key=lambda n: CASCADE.index(n) if n in CASCADE else len(CASCADE) + names.index(n))


def untrained(family: str, *, seed: int = 0, cnn_hidden: int = 64, **config) -> MarketModel:
    """A freshly initialised (seeded) served model of ``family`` reading the full cascade before it
    (``upstream`` of every earlier family, and ``cnn_hidden`` of width ``cnn_hidden`` for the DQN),
    with an identity calibration: temperature 1, no prior weight, class net returns of +/- the
    cost. For benchmarks and tests of the serving path; it forecasts nothing. ``config``: other
    MarketConfig fields (e.g. ``embed``, ``hidden``)."""
    from ml.models.market import MarketConfig

    upstream = CASCADE[:CASCADE.index(family)]
    extra = ((("upstream", UPSTREAM_WIDTH * len(upstream)),) if upstream else ()) + \
        ((("cnn_hidden", cnn_hidden),) if family == "dqn" else ())
    torch.manual_seed(seed)
    model = MarketModel(MarketConfig(family=family, extra=extra, version=f"{family}-untrained", **config)).eval()
    c = model.config.cost_bps
    calibration = Calibration(temperature=1.0, prior_weight=0.0, prior=[1 / 3] * 3, cost_bps=c,
                              class_net_bps={"BUY": [c, -3 * c, -c], "SELL": [-3 * c, c, -c]},
                              q_scale={"BUY": 1.0, "SELL": 1.0} if family == "dqn" else None)
    return attach_serving(model, calibration, upstream)
