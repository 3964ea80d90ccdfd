"""Registry fixtures: tiny checkpoint files in a per-test directory, the registry emptied per test.

The session bootstrap's rows are deleted inside each test's transaction (rolled back after it),
never its files, so pruning here cannot touch the checkpoints other tests load.
"""
from __future__ import annotations

import itertools

import pytest
import torch

from apps.predictions import services
from apps.predictions.models import ModelCheckpoint

_versions = itertools.count()


@pytest.fixture
def registry(db, settings, tmp_path):
    settings.GOGO_CHECKPOINT_DIR = tmp_path
    ModelCheckpoint.objects.all().delete()
    return tmp_path


@pytest.fixture
def make_checkpoint(registry):
    """Save a tiny model of ``model_name`` and register it with ``metric``; returns the row (or None if pruned)."""
    from ml.models.checkpoint import save_checkpoint
    from ml.models.cnn import CnnConfig, MultiTimeframeCNN
    from ml.models.dqn import DqnConfig, QNetwork

    def make(metric: float | None, model_name: str = "cnn", file_model: str | None = None):
        torch.manual_seed(0)
        if (file_model or model_name) == "dqn":
            model = QNetwork(DqnConfig(encoder_size=4, hidden_size=4))
        else:
            model = MultiTimeframeCNN(CnnConfig(channels=(4,), kernel_sizes=(3,), encoder_size=4, hidden_size=4))
        version = f"test-{next(_versions)}"
        path = registry / f"{model_name}-{version}.pt"
        sha = save_checkpoint(path, model, model.config, {"val_macro_f1": metric}, (0, 1000))
        return services.checkpoint_register(model_name=model_name, version=version, path=path, sha256=sha,
                                            config=model.config.to_dict(), metrics={"val_macro_f1": metric},
                                            data_range=(0, 1000), validation_metric=metric)

    return make
