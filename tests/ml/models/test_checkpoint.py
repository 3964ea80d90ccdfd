"""Checkpoint round trip and refusal of corrupt, truncated or incompatible files."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from ml.models import live
from ml.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ml.models.market import MarketModel

METRICS = {"val_accuracy": 0.5, "label_distribution": {"val": {"BUY": 1, "SELL": 2, "HOLD": 3}}}
RANGE = (1_722_003_360_000, 1_723_158_000_000)


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, MarketModel, str]:
    model = live.untrained("cnn", embed=8, hidden=16)
    with torch.no_grad():  # non-default scaling buffers must survive the round trip too
        model.mean_eth_1m.fill_(0.25)
    path = tmp_path / "cnn.pt"
    digest = save_checkpoint(path, model, model.config, METRICS, RANGE)
    return path, model, digest


def test_round_trip_rebuilds_the_model_from_the_file_alone(saved, live_input) -> None:
    path, model, digest = saved
    loaded, meta = load_checkpoint(path)
    assert digest == meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.config == model.config and meta["config"] == model.config.to_dict()
    assert meta["metrics"] == METRICS and meta["data_range"] == RANGE
    assert meta["format_version"] == 2 and meta["created"]
    assert not loaded.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    assert live.predict(loaded, live_input).probs == live.predict(model, live_input).probs


def test_truncated_and_garbage_files_raise_checkpoint_error(saved, tmp_path: Path) -> None:
    path, _, _ = saved
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


class Payload:
    """Not a plain type: weights_only loading must refuse to unpickle it."""


def test_incompatible_files_raise_checkpoint_error(saved, tmp_path: Path) -> None:
    path, _, _ = saved
    payload = torch.load(path, weights_only=True)
    cases = {
        "format 99": {**payload, "format_version": 99},
        "incompatible": {**payload, "config": {**payload["config"], "hidden": 32}},
        "unknown MarketConfig fields": {**payload, "config": {**payload["config"], "depth": 3}},
        "family 'lstm'": {**payload, "config": {**payload["config"], "family": "lstm"}},
        "incompatible with this code: 'serving'": {k: v for k, v in payload.items() if k != "serving"},
    }
    for message, bad in cases.items():
        target = tmp_path / "bad.pt"
        torch.save(bad, target)
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(target)
    torch.save({"payload": Payload()}, tmp_path / "pickle.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "pickle.pt")


def test_save_refuses_metrics_that_are_not_plain_data(tmp_path: Path) -> None:
    model = live.untrained("cnn")
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path / "x.pt", model, model.config, {"bad": object()}, RANGE)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("family", ["dqn", "transformer"])
def test_every_model_family_round_trips_and_refuses_another_family_name(family, tmp_path: Path) -> None:
    from ml.models.specs import spec_for

    spec = spec_for(family)
    model = live.untrained(family)
    path = tmp_path / f"{family}.pt"
    save_checkpoint(path, model, model.config, METRICS, RANGE)
    loaded, meta = load_checkpoint(path, model_name=family)
    assert type(loaded) is spec.module_class and meta["model_class"] == spec.module_class.__name__
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match=f"holds a '{family}' model"):
        load_checkpoint(path, model_name="cnn")
