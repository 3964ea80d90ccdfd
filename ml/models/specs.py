"""The model families gogo knows: name -> module class, config class, predict, input package.

Adding a model means one entry here (and a training entry point in ml/training): the registry,
the checkpoints, the engine and the inference history work from this table.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from ml.features.base_input import BaseDataInput
from ml.models import cnn, dqn, transformer
from ml.models.output import ModelOutput

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """One model family.

    Attributes:
        name: registry name ("cnn", "dqn", "transformer"), also ModelOutput.model_name.
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


def _package_components(model: Any, inputs: BaseDataInput) -> dict[str, np.ndarray]:
    """The full windows of the components the model reads, with their present masks."""
    names = model.config.components
    return {**{n: inputs.components[n] for n in names}, **{f"present_{n}": inputs.present[n] for n in names}}


def _package_sequence(model: Any, inputs: BaseDataInput) -> dict[str, np.ndarray]:
    """The last seq_len rows of the 1s/COB components, with their present masks."""
    t = model.config.seq_len
    names = transformer.SEQUENCE_COMPONENTS
    return {**{n: inputs.components[n][-t:] for n in names}, **{f"present_{n}": inputs.present[n][-t:] for n in names}}


SPECS: dict[str, ModelSpec] = {
    cnn.MODEL_NAME: ModelSpec(cnn.MODEL_NAME, cnn.MultiTimeframeCNN, cnn.CnnConfig, cnn.predict, _package_components),
    dqn.MODEL_NAME: ModelSpec(dqn.MODEL_NAME, dqn.QNetwork, dqn.DqnConfig, dqn.predict, _package_components),
    transformer.MODEL_NAME: ModelSpec(transformer.MODEL_NAME, transformer.FrameTransformer,
                                      transformer.TransformerConfig, transformer.predict, _package_sequence),
}
MODEL_NAMES = tuple(SPECS)


def spec_for(model_name: str) -> ModelSpec:
    """Raises KeyError naming the known models."""
    try:
        return SPECS[model_name]
    except KeyError:
        raise KeyError(f"unknown model {model_name!r}; known: {list(SPECS)}") from None


def spec_for_module(module_class_name: str) -> ModelSpec | None:
    """The spec whose module class is called ``module_class_name`` (None if none)."""
    return next((s for s in SPECS.values() if s.module_class.__name__ == module_class_name), None)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
