"""Ranked checkpoints (net edge per trade first): top N kept, the live one loaded, corrupt files
skipped, shadows never loaded as live, admin rollback."""
from __future__ import annotations

from pathlib import Path

import pytest

from apps.predictions import services
from apps.predictions.models import ModelCheckpoint, RegistrySettings, TrainingRun
from apps.predictions.selectors import checkpoint_ranked

pytestmark = pytest.mark.django_db


def _metrics(model_name: str = "cnn") -> list[float | None]:
    return [c.validation_metric for c in checkpoint_ranked(model_name=model_name)]


def test_only_the_top_n_checkpoints_are_kept_with_their_files_and_the_live_one_is_never_pruned(make_checkpoint, registry):
    RegistrySettings.objects.update_or_create(pk=1, defaults={"keep_top_n": 3})
    live = make_checkpoint(0.35)  # the first checkpoint of a model goes live
    rows = [make_checkpoint(m) for m in (0.1, 0.5, 0.3)]
    paths = {r.validation_metric: Path(r.path) for r in rows}
    assert make_checkpoint(0.4) is not None
    assert make_checkpoint(0.2) is None  # ranked below the top 3: deleted at once

    assert _metrics() == [0.5, 0.4, 0.35]
    assert not paths[0.1].exists() and not paths[0.3].exists() and paths[0.5].exists()
    assert sorted(p.name for p in registry.glob("*.pt")) == sorted(
        Path(c.path).name for c in ModelCheckpoint.objects.filter(model_name="cnn"))
    # a better-ranked checkpoint does not replace the live one: only a shadow promotion or an admin does
    assert ModelCheckpoint.objects.get(is_active=True).pk == live.pk
    assert set(ModelCheckpoint.objects.values_list("state", flat=True)) == {"live", "retired"}


def test_the_default_keeps_five_and_a_checkpoint_without_metric_ranks_last(make_checkpoint):
    rows = [make_checkpoint(m) for m in (0.1, None, 0.2, 0.3, 0.4)]
    assert _metrics() == [0.4, 0.3, 0.2, 0.1, None]
    nan = make_checkpoint(float("nan"))  # a NaN metric is no metric; among equals the newer ranks first
    assert nan.validation_metric is None and nan.metrics["val_macro_f1"] is None
    assert not ModelCheckpoint.objects.filter(pk=rows[1].pk).exists()
    make_checkpoint(0.5)
    assert RegistrySettings.objects.get(pk=1).keep_top_n == 5
    assert _metrics() == [0.5, 0.4, 0.3, 0.2, 0.1]


def test_checkpoints_rank_by_net_edge_per_trade_first_and_those_without_it_below(register_row):
    register_row(0.9)  # old: macro-F1 0.9 but no net edge measured
    register_row(0.2, net_edge=3.5)
    register_row(0.8, net_edge=-4.0)  # good F1, loses money after costs
    register_row(0.1, net_edge=0.0)  # e.g. never trades: as always-HOLD
    register_row(0.5)
    ranked = checkpoint_ranked(model_name="cnn")
    assert [(c.net_edge_bps, c.validation_metric) for c in ranked] == [
        (3.5, 0.2), (0.0, 0.1), (-4.0, 0.8), (None, 0.9), (None, 0.5)]
    assert ranked[0].metrics["validation"]["net_pnl_bps"] == 350


def test_without_the_new_metric_checkpoints_still_rank_by_the_old_one(register_row):
    for m in (0.3, 0.6, None, 0.45):
        register_row(m)
    assert _metrics() == [0.6, 0.45, 0.3, None]
    assert all(c.net_edge_bps is None for c in checkpoint_ranked(model_name="cnn"))


def test_the_live_checkpoint_is_loaded_and_a_corrupt_one_falls_back_to_the_best_ranked(make_checkpoint, caplog):
    live, _worse, best = make_checkpoint(0.3), make_checkpoint(0.2), make_checkpoint(0.6)
    model, loaded = services.model_load_live(model_name="cnn", train_if_missing=False)
    assert loaded.pk == live.pk and loaded.is_active and not model.training

    Path(live.path).write_bytes(b"\x00garbage")
    model, loaded = services.model_load_live(model_name="cnn", train_if_missing=False)
    assert loaded.pk == best.pk and loaded.is_active and loaded.state == "live"
    live.refresh_from_db()
    assert not live.is_active and live.state == "retired" and "corrupt or truncated" in live.load_error
    assert any("unusable, trying the next best" in r.message and r.levelname == "ERROR" for r in caplog.records)


def test_a_shadow_is_never_loaded_as_the_live_model(make_checkpoint):
    live = make_checkpoint(0.1)
    shadow = make_checkpoint(0.9, net_edge=5.0, shadow=None)
    assert shadow.state == "shadow" and not shadow.is_active
    Path(live.path).unlink()
    with pytest.raises(LookupError):
        services.model_load_live(model_name="cnn", train_if_missing=False)
    model, loaded = services.model_load_shadow(model_name="cnn")
    assert loaded.pk == shadow.pk and not model.training


def test_a_newer_shadow_supersedes_the_one_before_and_shadows_are_not_pruned(register_row):
    RegistrySettings.objects.update_or_create(pk=1, defaults={"keep_top_n": 1})
    live = register_row(0.9)
    first = register_row(0.1, shadow=None)
    assert first.state == "shadow" and first.evidence["decision"] == "pending"  # ranked 2nd of 1 kept: not pruned
    second = register_row(0.2, shadow=None)
    assert not ModelCheckpoint.objects.filter(pk=first.pk).exists()  # superseded, retired, then pruned
    assert second.state == "shadow" and list(ModelCheckpoint.objects.values_list("pk", flat=True).order_by("pk")) == [
        live.pk, second.pk]


def test_a_file_of_another_model_family_is_refused_as_incompatible(make_checkpoint):
    wrong = make_checkpoint(0.9, file_model="dqn")  # a DQN file registered under "cnn" (live: first)
    good = make_checkpoint(0.1)
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


def test_the_training_task_registers_the_first_checkpoint_live(registry, settings, monkeypatch):
    import torch

    from apps.predictions.services import TRAINERS, Trained
    from ml.models.live import untrained
    from workers.training import train_model

    def tiny(progress):
        torch.manual_seed(0)
        return Trained(untrained("dqn", embed=4, hidden=4), {"val_mean_reward_bps": 1.5}, (0, 60_000))

    monkeypatch.setitem(TRAINERS, "dqn", tiny)
    run = TrainingRun.objects.get(pk=train_model.apply(args=("dqn",)).get())
    row, pk = run.checkpoint, run.checkpoint_id
    assert run.state == "promoted" and run.kind == "full"  # no live dqn before: the first goes live
    assert row.model_name == "dqn" and row.validation_metric == 1.5 and row.is_active and row.state == "live"
    assert Path(row.path).parent == registry and row.version.startswith("dqn-untrained-60000-")
    model, live = services.model_load_live(model_name="dqn", train_if_missing=False)
    assert live.pk == pk and model.config.hidden == 4


def test_the_admin_promotes_a_shadow_and_rolls_it_back_in_one_click(register_row, admin_client):
    from apps.accounts.models import AuditLog

    old = register_row(0.2)
    shadow = register_row(0.8, shadow=None)
    url = "/admin/predictions/modelcheckpoint/"
    response = admin_client.post(url, {"action": "promote_checkpoint", "_selected_action": [shadow.pk]}, follow=True)
    assert "is now live" in response.content.decode()
    shadow.refresh_from_db()
    old.refresh_from_db()
    assert shadow.state == "live" and shadow.is_active and shadow.replaced_id == old.pk
    assert old.state == "retired" and not old.is_active
    assert "promoted by admin" in shadow.evidence["why"]
    page = admin_client.get(url, {"state": "live"}).content.decode()
    assert "promoted: n=0" in page  # the evidence column

    response = admin_client.post(url, {"action": "rollback_to_replaced", "_selected_action": [shadow.pk]}, follow=True)
    assert "live again" in response.content.decode()
    old.refresh_from_db()
    shadow.refresh_from_db()
    assert old.is_active and old.pinned and old.state == "live" and shadow.state == "retired"
    assert list(AuditLog.objects.order_by("pk").values_list("action", flat=True)) == ["checkpoint.promote", "checkpoint.pin"]
