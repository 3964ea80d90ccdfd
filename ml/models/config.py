"""What every model config shares: the checkpoint dict round trip and the component check."""
from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Self

from ml.features.base_input import COMPONENT_SHAPES


class ConfigDict:
    """Mixin for frozen dataclass configs: ``to_dict`` (tuples as lists, for checkpoints) and
    ``from_dict`` (its inverse; raises ValueError on unknown keys or invalid values)."""

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        extra = sorted(set(data) - {f.name for f in fields(cls)})
        if extra:
            raise ValueError(f"unknown {cls.__name__} fields {extra}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def check_components(components: tuple[str, ...]) -> None:
    """Raise ValueError unless ``components`` is a non-empty subset of the BaseDataInput layout."""
    unknown = [c for c in components if c not in COMPONENT_SHAPES]
    if unknown or not components:
        raise ValueError(f"components {unknown or '()'} not in {list(COMPONENT_SHAPES)}")
