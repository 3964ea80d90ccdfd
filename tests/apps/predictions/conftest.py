"""Registry fixtures: tiny checkpoint files in a per-test directory, the registry emptied per test.

The session bootstrap's rows are deleted inside each test's transaction (rolled back after it),
never its files, so pruning here cannot touch the checkpoints other tests load.
"""
from __future__ import annotations

import itertools

import pytest

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
    """Save a tiny model of ``model_name`` and register it with ``metric`` (and ``net_edge``, the
    out-of-sample net bps per trade, in ``metrics["validation"]`` when given); returns the row (or
    None if pruned). ``shadow`` as ``checkpoint_register``: False (default here) registers a ranked
    standby when a live one exists, None sends it to shadow."""
    from ml.models.checkpoint import save_checkpoint
    from ml.models.live import untrained

    def make(metric: float | None, model_name: str = "cnn", file_model: str | None = None,
             net_edge: float | None = None, shadow: bool | None = False):
        model = untrained(file_model or model_name, embed=4, hidden=4)
        version = f"test-{next(_versions)}"
        path = registry / f"{model_name}-{version}.pt"
        metrics = {"val_macro_f1": metric}
        if net_edge is not None:
            metrics["validation"] = {"net_edge_bps_per_trade": {"mean": net_edge, "lo": net_edge - 1,
                                                                "hi": net_edge + 1, "t": 2.0, "p": 0.05, "n": 100},
                                     "net_pnl_bps": 100 * net_edge}
        sha = save_checkpoint(path, model, model.config, metrics, (0, 1000))
        return services.checkpoint_register(model_name=model_name, version=version, path=path, sha256=sha,
                                            config=model.config.to_dict(), metrics=metrics,
                                            data_range=(0, 1000), validation_metric=metric, shadow=shadow)

    return make


@pytest.fixture
def register_row(registry):
    """Register a checkpoint row without a model file (ranking, shadow and promotion rules never
    load one): ``register_row(metric, net_edge=None, shadow=False, model_name="cnn", config=None)``."""
    def register(metric: float | None, *, net_edge: float | None = None, shadow: bool | None = False,
                 model_name: str = "cnn", config: dict | None = None):
        version = f"row-{next(_versions)}"
        metrics = {"val_macro_f1": metric}
        if net_edge is not None:
            metrics["validation"] = {"net_edge_bps_per_trade": {"mean": net_edge, "lo": net_edge - 1,
                                                                "hi": net_edge + 1, "t": 2.0, "p": 0.05, "n": 100},
                                     "net_pnl_bps": 100 * net_edge}
        return services.checkpoint_register(
            model_name=model_name, version=version, path=registry / f"{model_name}-{version}.pt", sha256="0" * 64,
            config=config or {"horizon_min": 5}, metrics=metrics, data_range=(0, 1000), validation_metric=metric,
            shadow=shadow)

    return register
