"""The dashboard's learning panel: rendered accuracy, alerts and training state; live training
progress through the dashboard websocket."""
from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.template.loader import render_to_string
from django.test import Client

from apps.market.convert import ms_to_datetime
from apps.market.models import Instrument
from apps.predictions.models import ModelAlert, Prediction, PredictionOutcome

T0 = 1_893_456_000_000


@pytest.mark.django_db
def test_the_panel_shows_accuracy_by_horizon_open_alerts_and_training_state():
    from apps.predictions.learning import training_progress_reporter

    eth = Instrument.objects.get(venue="binance", symbol="ETHUSDT")
    preds = Prediction.objects.bulk_create([
        Prediction(instrument=eth, model_name="dqn", ts_event=ms_to_datetime(T0 + k * 1000), status="predicted",
                   action="BUY", prob_buy=0.5, prob_sell=0.25, prob_hold=0.25, confidence=0.5) for k in range(4)])
    PredictionOutcome.objects.bulk_create([
        PredictionOutcome(prediction=p, horizon="5m", instrument=eth, model_name="dqn", ts_event=p.ts_event,
                          action="BUY", confidence=0.5, price_start=Decimal(100), price_end=Decimal(101),
                          realized_return=0.01, label="BUY" if k < 3 else "HOLD", correct=k < 3, pnl_bps=80.0,
                          brier=0.375) for k, p in enumerate(preds)])
    ModelAlert.objects.create(kind="regression", model_name="cnn", horizon="1m", metric="accuracy",
                              message="accuracy 0.300 < 0.700")
    report = training_progress_reporter(model_name="transformer", kind="fine_tune")
    report.epoch(2, 3, 0.7, 0.41)

    html = render_to_string("dashboard/_learning.html")
    assert 'id="learning-card"' in html and "75.0" in html and "(25.0, 4)" in html  # 3 of 4 right, HOLD 1 of 4
    assert "regression" in html and "accuracy 0.300 &lt; 0.700" in html
    assert "2/3" in html and "0.4100" in html


@pytest.mark.django_db
def test_the_panels_offer_train_now_to_traders_and_show_shadow_evidence_with_promote_and_rollback_to_admins(tmp_path):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from apps.predictions import services
    from apps.predictions.models import ModelCheckpoint

    def row(version: str, shadow: bool | None):
        return services.checkpoint_register(model_name="cnn", version=version, path=tmp_path / f"{version}.pt",
                                            sha256="0" * 64, config={"horizon_min": 5}, metrics={},
                                            data_range=(0, 1000), validation_metric=None, shadow=shadow)

    shadow = row("panel-shadow", None)  # the session's cnn is live
    ModelCheckpoint.objects.filter(pk=shadow.pk).update(evidence={
        "decision": "pending", "n": 1234, "mean": 1.5, "lo": -0.25, "hi": 3.0, "why": "the interval still includes 0"})
    users = get_user_model().objects
    viewer = users.create_user("panel-viewer", password="a-long-test-password")
    trader = users.create_user("panel-trader", password="a-long-test-password")
    trader.groups.add(Group.objects.get_or_create(name="trader")[0])
    admin = users.create_user("panel-admin", password="a-long-test-password", is_staff=True)

    assert "data-train-now" not in render_to_string("dashboard/_learning.html", {"user": viewer})
    assert 'data-train-now="cnn"' in render_to_string("dashboard/_learning.html", {"user": trader})
    as_trader = render_to_string("dashboard/_checkpoints.html", {"user": trader})
    assert "shadow" in as_trader and "pending: n=1234, +1.50 bps/s [-0.25, +3.00]" in as_trader
    assert "the interval still includes 0" in as_trader and "data-checkpoint-action" not in as_trader
    as_admin = render_to_string("dashboard/_checkpoints.html", {"user": admin})
    assert f'data-checkpoint-action="promote" data-id="{shadow.pk}"' in as_admin

    services.checkpoint_promote(checkpoint=shadow, evidence={"decision": "promoted", "n": 4000, "mean": 2.0,
                                                             "lo": 0.5, "hi": 3.5, "why": "lower end > 0"})
    as_admin = render_to_string("dashboard/_checkpoints.html", {"user": admin})
    assert f'data-checkpoint-action="rollback" data-id="{shadow.pk}"' in as_admin
    assert "promoted: n=4000, +2.00 bps/s [+0.50, +3.50]" in as_admin


@pytest.fixture
def isolated_layer(settings):
    layer = dict(settings.CHANNEL_LAYERS["default"])
    if "RedisChannelLayer" in layer["BACKEND"]:
        layer["CONFIG"] = {**layer.get("CONFIG", {}), "prefix": f"test-{uuid.uuid4().hex[:10]}"}
    settings.CHANNEL_LAYERS = {"default": layer}


@database_sync_to_async
def _cookie() -> tuple[bytes, bytes]:
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.create_user("learner", password="a-long-test-password"))
    return b"cookie", f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("isolated_layer")
async def test_training_progress_is_forwarded_to_the_browser_as_a_training_message():
    from gogo.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/dashboard/",
                                         headers=[(b"origin", b"http://127.0.0.1:8000"), await _cookie()])
    connected, _ = await communicator.connect(timeout=5)
    try:
        assert connected
        await get_channel_layer().group_send("dashboard", {"type": "training.progress", "training": {
            "model": "cnn", "kind": "full", "state": "running", "epoch": 1, "total": 4}})
        message = await communicator.receive_json_from(timeout=5)
    finally:
        await communicator.disconnect()
    assert message == {"type": "training", "model": "cnn", "kind": "full", "state": "running", "epoch": 1, "total": 4}


@pytest.mark.django_db
def test_the_dashboard_page_includes_the_panel_and_its_script(client):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_user("viewer", password="a-long-test-password"))
    html = client.get("/").content.decode()
    assert 'id="learning-card"' in html and "dashboard/learning.js" in html
