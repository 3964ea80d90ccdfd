"""Inference history and checkpoints."""
from __future__ import annotations

import pytest

from apps.accounts.models import AuditLog
from apps.predictions.models import ModelCheckpoint

pytestmark = pytest.mark.django_db


def test_predictions_are_filtered_newest_first_and_never_carry_the_input_package(as_viewer, eth, market_rows):
    body = as_viewer.get("/api/v1/predictions/", {"instrument": eth.pk, "model_name": "cnn"}).json()
    rows = body["results"]
    assert [r["status"] for r in rows] == ["skipped", "predicted"]
    assert all("input_package" not in r for r in rows)
    only = as_viewer.get("/api/v1/predictions/", {"status": "predicted", "end": "2024-08-08T10:00:01Z"}).json()["results"]
    assert [(r["action"], r["confidence"]) for r in only] == [("BUY", 0.6)]
    detail = as_viewer.get(f"/api/v1/predictions/{rows[0]['id']}/").json()
    assert "input_package" not in detail and b"secret-binary" not in as_viewer.get("/api/v1/predictions/").content


def test_checkpoints_are_listed_without_their_path(as_viewer):
    rows = as_viewer.get("/api/v1/checkpoints/", {"model_name": "cnn"}).json()["results"]
    assert rows and all("path" not in r for r in rows) and {r["model_name"] for r in rows} == {"cnn"}


def test_an_admin_pins_and_unpins_a_checkpoint_and_it_is_audited(as_admin, as_trader):
    checkpoint = ModelCheckpoint.objects.filter(model_name="cnn").first()
    assert as_trader.post(f"/api/v1/checkpoints/{checkpoint.pk}/pin/").status_code == 403
    response = as_admin.post(f"/api/v1/checkpoints/{checkpoint.pk}/pin/")
    assert response.status_code == 200 and response.json()["pinned"] and response.json()["is_active"]
    assert as_admin.post(f"/api/v1/checkpoints/{checkpoint.pk}/unpin/").status_code == 200
    assert not ModelCheckpoint.objects.filter(model_name="cnn", pinned=True).exists()
    assert list(AuditLog.objects.order_by("pk").values_list("action", flat=True)) == ["checkpoint.pin", "checkpoint.unpin"]


def test_train_now_queues_a_run_for_traders_whose_progress_reaches_done(as_trader, as_viewer, trader, settings, tmp_path,
                                                                         monkeypatch, django_capture_on_commit_callbacks):
    import torch

    from apps.predictions.models import TrainingRun
    from apps.predictions.services import TRAINERS, Trained
    from ml.models.live import untrained

    def tiny(progress):  # stands in for the DQN's trainer on the candle history
        torch.manual_seed(0)
        progress(0.5, "half way")
        return Trained(untrained("dqn", embed=4, hidden=4), {"val_mean_reward_bps": 1.5}, (0, 60_000))

    settings.GOGO_CHECKPOINT_DIR = tmp_path
    monkeypatch.setitem(TRAINERS, "dqn", tiny)
    url = "/api/v1/training-runs/"
    assert as_viewer.post(url, {"model_name": "dqn"}, format="json").status_code == 403
    bad = as_trader.post(url, {"model_name": "nope"}, format="json")
    assert bad.status_code == 400 and "unknown model" in bad.json()["model_name"][0]
    assert as_trader.post(url, ["dqn"], format="json").status_code == 400
    assert "kind" in as_trader.post(url, {"model_name": "dqn", "kind": "nap"}, format="json").json()
    with django_capture_on_commit_callbacks(execute=True):  # the task runs eagerly once the request commits
        response = as_trader.post(url, {"model_name": "dqn", "kind": "full"}, format="json")
    assert response.status_code == 202 and response.json()["state"] == "queued"
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.requested_by == trader.username and run.kind == "full"
    # no scored dqn cases yet: history only; the live dqn exists, so the new checkpoint goes to shadow
    assert run.state == "shadow" and run.checkpoint.state == "shadow" and not run.checkpoint.is_active

    body = as_viewer.get(f"{url}{run.pk}/").json()
    assert body["state"] == "shadow" and body["progress"]["run"] == run.pk
    assert body["progress"]["state"] == "shadow" and body["progress"]["fraction"] == 1.0
    assert AuditLog.objects.filter(action="training.request").count() == 1


def test_a_second_train_now_of_a_busy_model_is_refused(as_trader):
    from apps.predictions.models import TrainingRun

    TrainingRun.objects.create(model_name="cnn", kind="fine_tune", state="running")
    response = as_trader.post("/api/v1/training-runs/", {"model_name": "cnn"}, format="json")
    assert response.status_code == 409 and "already running" in response.json()["detail"]


def test_an_admin_promotes_a_shadow_and_rolls_it_back_in_one_click(as_admin, as_trader, tmp_path):
    from apps.predictions import services

    shadow = services.checkpoint_register(model_name="dqn", version="api-shadow", path=tmp_path / "dqn-api-shadow.pt",
                                          sha256="0" * 64, config={"horizon_min": 5}, metrics={}, data_range=(0, 1000),
                                          validation_metric=None)  # the session's dqn is live: this one goes to shadow
    live = ModelCheckpoint.objects.get(model_name="dqn", is_active=True)
    assert shadow.state == "shadow"
    listed = as_trader.get("/api/v1/checkpoints/", {"model_name": "dqn", "state": "shadow"}).json()["results"]
    assert [r["id"] for r in listed] == [shadow.pk] and listed[0]["evidence"]["decision"] == "pending"
    assert as_trader.post(f"/api/v1/checkpoints/{shadow.pk}/promote/").status_code == 403

    promoted = as_admin.post(f"/api/v1/checkpoints/{shadow.pk}/promote/").json()
    assert promoted["state"] == "live" and promoted["is_active"] and promoted["replaced"] == live.pk
    back = as_admin.post(f"/api/v1/checkpoints/{shadow.pk}/rollback/").json()
    assert back["id"] == live.pk and back["state"] == "live" and back["pinned"]
    assert as_admin.post(f"/api/v1/checkpoints/{live.pk}/rollback/").status_code == 409  # it replaced none
