"""Ranked checkpoints: top N kept, the best loaded, corrupt files skipped, admin rollback."""
from __future__ import annotations

from pathlib import Path

import pytest

from apps.predictions import services
from apps.predictions.models import ModelCheckpoint, RegistrySettings
from apps.predictions.selectors import checkpoint_ranked

pytestmark = pytest.mark.django_db


def _metrics(model_name: str = "cnn") -> list[float | None]:
    return [c.validation_metric for c in checkpoint_ranked(model_name=model_name)]


def test_only_the_top_n_checkpoints_by_validation_metric_are_kept_with_their_files(make_checkpoint, registry):
    RegistrySettings.objects.update_or_create(pk=1, defaults={"keep_top_n": 3})
    rows = [make_checkpoint(m) for m in (0.1, 0.5, 0.3)]
    paths = {r.validation_metric: Path(r.path) for r in rows}
    assert make_checkpoint(0.4) is not None
    assert make_checkpoint(0.2) is None  # ranked 4th of 4 kept-at-most-3: deleted at once

    assert _metrics() == [0.5, 0.4, 0.3]
    assert not paths[0.1].exists() and paths[0.5].exists() and paths[0.3].exists()
    assert sorted(p.name for p in registry.glob("*.pt")) == sorted(
        Path(c.path).name for c in ModelCheckpoint.objects.filter(model_name="cnn"))
    assert ModelCheckpoint.objects.get(is_active=True).validation_metric == 0.5


def test_the_default_keeps_five_and_a_checkpoint_without_metric_ranks_last(make_checkpoint):
    rows = [make_checkpoint(m) for m in (None, 0.1, 0.2, 0.3, 0.4)]
    assert _metrics() == [0.4, 0.3, 0.2, 0.1, None]
    nan = make_checkpoint(float("nan"))  # a NaN metric is no metric; among equals the newer ranks first
    assert nan.validation_metric is None and nan.metrics["val_macro_f1"] is None
    assert not ModelCheckpoint.objects.filter(pk=rows[0].pk).exists()
    make_checkpoint(0.5)
    assert RegistrySettings.objects.get(pk=1).keep_top_n == 5
    assert _metrics() == [0.5, 0.4, 0.3, 0.2, 0.1]


def test_the_best_checkpoint_is_loaded_and_a_corrupt_one_falls_back_to_the_next_best(make_checkpoint, caplog):
    worse, best = make_checkpoint(0.3), make_checkpoint(0.6)
    model, live = services.model_load_live(model_name="cnn", train_if_missing=False)
    assert live.pk == best.pk and live.is_active and not model.training

    Path(best.path).write_bytes(b"\x00garbage")
    model, live = services.model_load_live(model_name="cnn", train_if_missing=False)
    assert live.pk == worse.pk and live.is_active
    best.refresh_from_db()
    assert not best.is_active and "corrupt or truncated" in best.load_error
    assert any("unusable, trying the next best" in r.message and r.levelname == "ERROR" for r in caplog.records)


def test_a_file_of_another_model_family_is_refused_as_incompatible(make_checkpoint):
    good = make_checkpoint(0.1)
    wrong = make_checkpoint(0.9, file_model="dqn")  # a DQN file registered under "cnn"
    _model, live = services.model_load_live(model_name="cnn", train_if_missing=False)
    assert live.pk == good.pk
    wrong.refresh_from_db()
    assert "holds a 'dqn' model" in wrong.load_error


def test_with_no_loadable_checkpoint_the_error_is_clear_when_training_is_not_allowed(make_checkpoint):
    only = make_checkpoint(0.5)
    Path(only.path).unlink()
    with pytest.raises(LookupError, match="no loadable cnn checkpoint"):
        services.model_load_live(model_name="cnn", train_if_missing=False)
    only.refresh_from_db()
    assert "not found" in only.load_error


def test_rollback_pins_an_earlier_checkpoint_through_new_trainings_and_pruning(make_checkpoint):
    RegistrySettings.objects.update_or_create(pk=1, defaults={"keep_top_n": 2})
    old, _mid = make_checkpoint(0.2), make_checkpoint(0.4)
    services.checkpoint_rollback(checkpoint=old)
    newer = make_checkpoint(0.9)  # would be live without the pin; pushes `old` out of the top 2
    old.refresh_from_db()
    assert old.pinned and old.is_active and Path(old.path).exists()  # the live one is never pruned
    assert _metrics() == [0.9, 0.4, 0.2]
    _model, live = services.model_load_live(model_name="cnn", train_if_missing=False)
    assert live.pk == old.pk

    assert services.checkpoint_unpin(model_name="cnn").pk == newer.pk
    assert ModelCheckpoint.objects.get(model_name="cnn", is_active=True).pk == newer.pk


def test_the_admin_action_rolls_back_to_the_selected_checkpoint(make_checkpoint, admin_client):
    old, best = make_checkpoint(0.2), make_checkpoint(0.8)
    response = admin_client.post("/admin/predictions/modelcheckpoint/", {
        "action": "rollback_to_checkpoint", "_selected_action": [old.pk]}, follow=True)
    assert response.status_code == 200
    old.refresh_from_db()
    best.refresh_from_db()
    assert old.pinned and old.is_active and not best.is_active
    assert "is now live" in response.content.decode()


def test_checkpoint_files_found_on_disk_are_registered_after_a_database_reset(make_checkpoint):
    kept = make_checkpoint(0.7)
    ModelCheckpoint.objects.all().delete()  # the rows are gone, the file is not
    _model, live = services.model_load_live(model_name="cnn", train_if_missing=False)
    assert live.path == kept.path and live.validation_metric == 0.7


def test_the_training_task_registers_a_ranked_checkpoint(registry, settings, monkeypatch):
    import torch

    from apps.predictions.services import TRAINERS, Trained
    from ml.models.dqn import DqnConfig, QNetwork
    from workers.training import train_model

    def tiny(progress):
        torch.manual_seed(0)
        return Trained(QNetwork(DqnConfig(encoder_size=4, hidden_size=4)), {"val_mean_reward_bps": 1.5}, (0, 60_000))

    monkeypatch.setitem(TRAINERS, "dqn", tiny)
    pk = train_model.apply(args=("dqn",)).get()
    row = ModelCheckpoint.objects.get(pk=pk)
    assert row.model_name == "dqn" and row.validation_metric == 1.5 and row.is_active
    assert Path(row.path).parent == registry and row.version.startswith("dqn-duel-1-60000-")
    model, live = services.model_load_live(model_name="dqn", train_if_missing=False)
    assert live.pk == pk and model.config.hidden_size == 4
