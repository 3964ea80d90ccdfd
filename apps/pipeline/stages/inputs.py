"""The input builder: a second's BaseDataInput from the market step's rings (``ml.features.base_input``)."""
from __future__ import annotations

import logging
from collections.abc import Callable

from apps.market.models import Instrument
from apps.pipeline.stages.counters import InstrumentCounters
from apps.pipeline.stages.market import MarketStep
from ml.features.base_input import BaseDataInput, build_base_data_input
from ml.models.output import ModelOutput

logger = logging.getLogger(__name__)

InputHook = Callable[[BaseDataInput], BaseDataInput]


class InputBuilder:
    """Builds the traded instrument's BaseDataInput at a closed second and counts its completeness.

    ``hook``: BaseDataInput -> BaseDataInput applied after building (the backtest's look-ahead
    check; None live)."""

    def __init__(self, *, market: MarketStep, traded: Instrument, reference: Instrument,
                 counters: InstrumentCounters) -> None:
        self.market, self.traded, self.reference, self.counters = market, traded, reference, counters
        self.hook: InputHook | None = None

    def build(self, ts: int, *, last_outputs: dict[str, ModelOutput] | None = None,
              derived: bool = True) -> BaseDataInput:
        """The input at the close of second ``ts`` (ms) from the rings (no later data; shapes in
        ``ml.features.base_input``). ``last_outputs``: the previous second's model outputs (None:
        left out); ``derived=False`` skips the indicators and pivots no model reads."""
        symbol, reference = self.traded.symbol, self.reference.symbol
        extra = {} if last_outputs is None else {"last_outputs": last_outputs}
        inputs = build_base_data_input(
            ts=ts, symbol=symbol, reference_symbol=reference, rings=self.market.rings[symbol],
            reference_ring=self.market.rings[reference]["1s"], frame_ring=self.market.frame_rings[symbol],
            derived=derived, reference_1m_ring=self.market.rings[reference].get("1m"), **extra)
        return self.hook(inputs) if self.hook is not None else inputs

    def completeness(self, inputs: BaseDataInput) -> dict[str, float]:
        """``inputs.completeness()`` (component -> 0..1, and "overall"), counted in the run's mean."""
        completeness = inputs.completeness()
        self.counters.completeness_sum += completeness["overall"]
        self.counters.completeness_n += 1
        return completeness
