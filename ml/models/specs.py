"""The model families gogo serves: name -> module class, config class, predict, input package.

All three are :class:`ml.models.market.MarketModel` families over the input groups of
``ml/features/groups.py`` (``config.family`` picks the encoder), served by ``ml/models/live.py``.
The table is in cascade order (cnn -> transformer -> dqn): the registry loads, and the inference
loop runs, the models in this order, so each reads the same-second outputs of those before it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from torch import nn

from ml.features.base_input import BaseDataInput
from ml.models import live
from ml.models.market import MarketConfig, MarketModel
from ml.models.output import ModelOutput

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """One model family.

    Attributes:
        name: registry name ("cnn", "transformer", "dqn"), also ModelOutput.model_name and
            ``config.family``.
        module_class: the nn.Module; its constructor takes one config.
        config_class: frozen dataclass with to_dict / from_dict.
        predict: (model, BaseDataInput) -> ModelOutput; raises InputError subclasses.
        package: (model, BaseDataInput) -> the arrays the model read (for the inference history).
    """

    name: str
    module_class: type[nn.Module]
    config_class: type
    predict: Callable[[nn.Module, BaseDataInput], ModelOutput]
    package: Callable[[nn.Module, BaseDataInput], dict[str, np.ndarray]]


SPECS: dict[str, ModelSpec] = {
    name: ModelSpec(name, MarketModel, MarketConfig, live.predict, live.package) for name in live.CASCADE}
MODEL_NAMES = tuple(SPECS)


def spec_for(model_name: str) -> ModelSpec:
    """Raises KeyError naming the known models."""
    try:
        return SPECS[model_name]
    except KeyError:
        raise KeyError(f"unknown model {model_name!r}; known: {list(SPECS)}") from None


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
