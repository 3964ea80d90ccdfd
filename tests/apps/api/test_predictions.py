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
