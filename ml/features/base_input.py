"""BaseDataInput: the one standardized input every model receives, once per exchange second.

Layout (all float32, oldest row first, last row = newest closed data at ``ts``):

============  ==========  ======================================================================
component     shape       content
============  ==========  ======================================================================
primary_1s    (300, 5)    traded instrument (ETHUSDT) 1s candles [o, h, l, c, v]; open times
                          ts-299s .. ts (the second that just closed)
primary_1m    (300, 5)    traded instrument 1m candles; last row = last minute fully closed
                          at ts+1000 ms
primary_1h    (300, 5)    traded instrument 1h candles; last row = last hour fully closed
primary_1d    (300, 5)    traded instrument 1d candles; last row = last day fully closed
reference_1s  (300, 5)    reference instrument (BTCUSDT) 1s candles, same rows as primary_1s
reference_1m  (300, 5)    optional: reference instrument 1m candles, rows as primary_1m; only
                          when the caller passes its 1m ring (not part of COMPONENTS: it counts
                          in no completeness score, and a model reading it masks it when absent)
cob           (300, 87)   traded instrument CobFrames for seconds ts-299s .. ts:
                          bid_usd (41) | ask_usd (41) | imbalance_5, ma_1s, ma_5s, ma_15s, ma_60s
============  ==========  ======================================================================

Derived per primary candle component (primary_1s, primary_1m, primary_1h, primary_1d), computed
from that component's window only (so never from data after ``ts``):

============  ==========  ======================================================================
attribute     shape       content
============  ==========  ======================================================================
indicators    (300, 9)    RSI, MACD (line, signal, histogram), Bollinger %b and width, ATR, VWAP,
                          OBV per row, unitless (ml/features/indicators.py)
pivots        (5, 2)      Williams pivot levels 1-5 (ml/pivots.py, strength 1): [support,
                          resistance] prices (USD) of each level's latest confirmed swing low /
                          high in the window; NaN where the level has none
============  ==========  ======================================================================

``last_outputs`` carries every model's previous-second ModelOutput (cross-model feeding);
:meth:`BaseDataInput.last_output_features` turns it into a fixed (K, 5) array.

Prices in quote currency (USD), volumes in base units, COB sizes in USD. ``present[name]`` is a
bool (300,) mask: False rows were filled (see :mod:`ml.features.rings`). No row ever holds
data from after the end of second ``ts``: a 1m/1h/1d candle is used only once
``open_time + period <= ts + 1000``.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ml.features.indicators import INDICATOR_NAMES, indicators
from ml.features.rings import TIMEFRAME_MS, CandleRing, FrameRing, cob_width
from ml.models.output import ACTIONS, ModelOutput

logger = logging.getLogger(__name__)

WINDOW = 300  # rows per component
N_BUCKETS = 20  # COB buckets each side of the mid bucket
CANDLE_COMPONENTS = ("primary_1s", "primary_1m", "primary_1h", "primary_1d", "reference_1s")
COB_COMPONENT = "cob"
COMPONENTS = CANDLE_COMPONENTS + (COB_COMPONENT,)
COMPONENT_SHAPES: dict[str, tuple[int, int]] = {
    **{name: (WINDOW, 5) for name in CANDLE_COMPONENTS},
    COB_COMPONENT: (WINDOW, cob_width(N_BUCKETS)),  # (300, 87)
}
OPTIONAL_COMPONENTS: dict[str, tuple[int, int]] = {"reference_1m": (WINDOW, 5)}
PRIMARY_TIMEFRAMES = {
    "primary_1s": "1s", "primary_1m": "1m", "primary_1h": "1h", "primary_1d": "1d"}
PIVOT_LEVELS = 5
INDICATOR_SHAPE = (WINDOW, len(INDICATOR_NAMES))  # (300, 9)
PIVOT_SHAPE = (PIVOT_LEVELS, 2)  # [support, resistance] per level


class InputError(ValueError):
    """A BaseDataInput that models must not consume."""


class InputShapeError(InputError):
    """A component is missing or has the wrong shape or dtype."""


class IncompleteInputError(InputError):
    """Too few real (present) rows in the components a model needs."""


@dataclass
class BaseDataInput:
    """One standardized model input (layout in the module docstring).

    Attributes:
        symbol: traded instrument, e.g. "ETHUSDT".
        reference_symbol: reference instrument, e.g. "BTCUSDT".
        ts: ms since epoch, UTC: start of the exchange second that just closed.
        components: name -> float32 array of ``COMPONENT_SHAPES[name]``.
        present: name -> bool (300,) mask of rows backed by real data.
        last_outputs: model name -> that model's latest ModelOutput (for stacking models).
        indicators: primary candle component -> float32 (300, 9) (module docstring); empty when
            built with ``derived=False``.
        pivots: primary candle component -> float64 (5, 2) [support, resistance] per level.
    """

    symbol: str
    reference_symbol: str
    ts: int
    components: dict[str, np.ndarray]
    present: dict[str, np.ndarray]
    last_outputs: dict[str, ModelOutput] = field(default_factory=dict)
    indicators: dict[str, np.ndarray] = field(default_factory=dict)
    pivots: dict[str, np.ndarray] = field(default_factory=dict)

    def last_output_features(self, model_names: tuple[str, ...]) -> np.ndarray:
        """Cross-model features: float32 (K, 5) per named model [known, P(BUY), P(SELL), P(HOLD),
        confidence]; a row of zeros for a model without a previous output."""
        out = np.zeros((len(model_names), 2 + len(ACTIONS)), dtype=np.float32)
        for i, name in enumerate(model_names):
            o = self.last_outputs.get(name)
            if o is not None:
                out[i] = [1.0, *(o.probs[a] for a in ACTIONS), o.confidence]
        return out

    def completeness(self) -> dict[str, float]:
        """Share of the 300 required rows present, per component, in [0, 1].

        ``"overall"`` is the unweighted mean over the six components, so one empty component
        costs 1/6. Models that use only some components should check those
        (:meth:`require_complete`).
        """
        scores = {name: np.count_nonzero(self.present[name]) / max(1, len(self.present[name])) if name in self.present else 0.0
                  for name in COMPONENTS}
        scores["overall"] = float(np.mean([scores[name] for name in COMPONENTS]))
        return scores

    def validate(self) -> None:
        """Check every component and mask against the layout.

        Raises:
            InputShapeError: naming the component, expected vs actual shape (or dtype).
        """
        for name, shape in COMPONENT_SHAPES.items():
            arr = self.components.get(name)
            if arr is None:
                raise InputShapeError(f"component {name!r} is missing (expected shape {shape})")
            if arr.shape != shape:
                raise InputShapeError(
                    f"component {name!r}: expected shape {shape}, got {arr.shape}")
            if arr.dtype != np.float32:
                raise InputShapeError(f"component {name!r}: expected float32, got {arr.dtype}")
            mask = self.present.get(name)
            if mask is None or mask.shape != (shape[0],) or mask.dtype != np.bool_:
                got = None if mask is None else (mask.shape, str(mask.dtype))
                raise InputShapeError(f"present[{name!r}]: expected bool ({shape[0]},), got {got}")
        for name, shape in OPTIONAL_COMPONENTS.items():
            arr, mask = self.components.get(name), self.present.get(name)
            if arr is None and mask is None:
                continue
            if arr is None or arr.shape != shape or arr.dtype != np.float32 or mask is None \
                    or mask.shape != (shape[0],) or mask.dtype != np.bool_:
                got = None if arr is None else (arr.shape, str(arr.dtype))
                raise InputShapeError(f"optional component {name!r}: expected float32 {shape} with a bool "
                                      f"({shape[0]},) mask, got {got}")
        for what, arrays, shape in (("indicators", self.indicators, INDICATOR_SHAPE),
                                    ("pivots", self.pivots, PIVOT_SHAPE)):
            for name, arr in arrays.items():
                if name not in PRIMARY_TIMEFRAMES or arr.shape != shape:
                    raise InputShapeError(f"{what}[{name!r}]: expected a primary component with shape "
                                          f"{shape}, got {arr.shape}")

    def require_complete(self, names: tuple[str, ...], minimum: float) -> None:
        """Refuse input whose named components have less than ``minimum`` rows present.

        Raises:
            IncompleteInputError: naming each component below the threshold and its score.
        """
        scores = self.completeness()
        low = {name: round(scores[name], 4) for name in names if scores[name] < minimum}
        if low:
            raise IncompleteInputError(f"completeness below {minimum}: {low}")


def last_closed_open_time(ts: int, timeframe: str) -> int:
    """Open time (ms) of the last ``timeframe`` candle fully closed at the end of second ``ts``.

    A candle counts once ``open_time + period <= ts + 1000``. For "1s" that is ``ts`` itself.
    """
    period = TIMEFRAME_MS[timeframe]
    return (ts + 1000) // period * period - period


def build_base_data_input(*, ts: int, symbol: str, reference_symbol: str,
                          rings: dict[str, CandleRing], reference_ring: CandleRing | None,
                          frame_ring: FrameRing | None,
                          last_outputs: dict[str, ModelOutput] | None = None,
                          derived: bool = True, reference_1m_ring: CandleRing | None = None) -> BaseDataInput:
    """Assemble the BaseDataInput at the close of exchange second ``ts`` from the hot rings.

    Args:
        ts: ms, start of the second just closed; must be a whole second.
        rings: primary-instrument candle rings keyed by timeframe ("1s", "1m", "1h", "1d");
            a missing timeframe gives a zero component with no row present.
        reference_ring: 1s candles of the reference instrument (or None).
        frame_ring: CobFrames of the primary instrument (or None).
        derived: compute the indicators and pivots of the primary candle components.
        reference_1m_ring: 1m candles of the reference instrument; gives the optional
            ``reference_1m`` component (left out when None).

    Raises:
        ValueError: ts is not a whole second, or a ring's timeframe differs from its key.
        InputShapeError: a ring yields the wrong width (e.g. a FrameRing with N != 20).
    """
    if ts % 1000:
        raise ValueError(f"ts={ts} is not the start of a second")
    components: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    sources: dict[str, CandleRing | None] = {
        name: rings.get(tf) for name, tf in PRIMARY_TIMEFRAMES.items()}
    sources["reference_1s"] = reference_ring
    for name, ring in sources.items():
        tf = PRIMARY_TIMEFRAMES.get(name, "1s")
        if ring is None:
            components[name] = np.zeros(COMPONENT_SHAPES[name], dtype=np.float32)
            present[name] = np.zeros(WINDOW, dtype=bool)
            continue
        if ring.timeframe != tf:
            raise ValueError(f"ring for {name!r} has timeframe {ring.timeframe!r}, expected {tf!r}")
        components[name], present[name] = ring.window(last_closed_open_time(ts, tf), WINDOW)
    if reference_1m_ring is not None:
        if reference_1m_ring.timeframe != "1m":
            raise ValueError(f"reference_1m_ring has timeframe {reference_1m_ring.timeframe!r}, expected '1m'")
        components["reference_1m"], present["reference_1m"] = reference_1m_ring.window(
            last_closed_open_time(ts, "1m"), WINDOW)
    if frame_ring is None:
        components[COB_COMPONENT] = np.zeros(COMPONENT_SHAPES[COB_COMPONENT], dtype=np.float32)
        present[COB_COMPONENT] = np.zeros(WINDOW, dtype=bool)
    else:
        components[COB_COMPONENT], present[COB_COMPONENT] = frame_ring.window(ts, WINDOW)
    inputs = BaseDataInput(symbol=symbol, reference_symbol=reference_symbol, ts=ts,
                           components=components, present=present,
                           last_outputs=dict(last_outputs or {}))
    if derived:
        inputs.indicators, inputs.pivots = derived_features(components)
    inputs.validate()
    return inputs


_DERIVED_CACHE: OrderedDict[tuple[str, bytes], tuple[np.ndarray, np.ndarray]] = OrderedDict()
_DERIVED_CACHE_SIZE = 16


def derived_features(components: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Indicators (300, 9) and pivot levels (5, 2) of each primary candle component's window.

    Both depend on the window's values only, so they are cached by those values: the 1m/1h/1d
    windows change once a minute / hour / day and cost nothing the other seconds. A window whose
    pivots cannot be computed (a candle with high < low) gets NaN levels and a warning."""
    from ml.pivots import williams_pivots

    ind_out, piv_out, todo = {}, {}, []
    for name in PRIMARY_TIMEFRAMES:
        hit = _DERIVED_CACHE.get((name, components[name].tobytes()))
        if hit is None:
            todo.append(name)
        else:
            ind_out[name], piv_out[name] = hit
    if todo:
        stacked = indicators(np.stack([components[n] for n in todo]))  # (K, 300, 9), one batched pass
        for name, ind in zip(todo, stacked, strict=True):
            try:
                piv = williams_pivots(components[name][:, 1], components[name][:, 2],
                                      levels=PIVOT_LEVELS).support_resistance()  # (5, 2)
            except ValueError as exc:
                logger.warning("pivots of %s not computed: %s", name, exc)
                piv = np.full(PIVOT_SHAPE, np.nan)
            ind.setflags(write=False)
            piv.setflags(write=False)
            ind_out[name], piv_out[name] = ind, piv
            _DERIVED_CACHE[(name, components[name].tobytes())] = (ind, piv)
            while len(_DERIVED_CACHE) > _DERIVED_CACHE_SIZE:
                _DERIVED_CACHE.popitem(last=False)
    return ind_out, piv_out
