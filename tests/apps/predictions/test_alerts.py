"""Regression and stagnation alerts: the rules, no repeats, e-mail and webhook notification."""
from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

from apps.market.convert import ms_to_datetime
from apps.market.models import Instrument
from apps.predictions.alerts import alert_acknowledge, alert_notify_failures, model_alerts_check
from apps.predictions.metrics import learning_summary
from apps.predictions.models import ModelAlert, Prediction, PredictionOutcome, TrainingRun
from ml.outcomes import AlertRule, check_regression, check_retrain_stagnation, check_stagnation

pytestmark = pytest.mark.django_db
T0 = 1_893_456_000_000
RULE = AlertRule(window=100, k_se=3.0, epsilon=0.01, retrains=3)


@pytest.fixture
def eth():
    return Instrument.objects.get(venue="binance", symbol="ETHUSDT")


def _outcomes(instrument, correct: np.ndarray, labels: list[str] | None = None, model_name: str = "cnn",
              horizon: str = "5m") -> None:
    """One scored BUY call per second with the given correctness (oldest first)."""
    preds = Prediction.objects.bulk_create([
        Prediction(instrument=instrument, model_name=model_name, ts_event=ms_to_datetime(T0 + k * 1000),
                   status="predicted", action="BUY", prob_buy=0.5, prob_sell=0.25, prob_hold=0.25, confidence=0.5)
        for k in range(len(correct))])
    labels = labels or ["BUY" if c else "SELL" for c in correct]
    PredictionOutcome.objects.bulk_create([
        PredictionOutcome(prediction=p, horizon=horizon, instrument=instrument, model_name=model_name,
                          ts_event=p.ts_event, action="BUY", confidence=0.5, price_start=Decimal(100),
                          price_end=Decimal(101), realized_return=0.01, label=label, correct=bool(c), pnl_bps=80.0,
                          brier=0.375)
        for p, c, label in zip(preds, correct, labels, strict=True)])


def test_the_rules_on_arrays():
    rng = np.random.default_rng(0)
    good, bad = rng.random(100) < 0.7, rng.random(100) < 0.3
    hit = check_regression(good, bad, RULE)
    assert hit and hit["drop"] > 3 * hit["se"] and hit["n"] == 100
    assert check_regression(good, good[::-1], RULE) is None  # same accuracy
    assert check_regression(good[:50], bad, RULE) is None  # too few calls to judge
    labels = np.full(100, 2)  # all HOLD
    assert check_stagnation(labels == 2, labels, RULE)["baseline_hold"] == 1.0
    assert check_stagnation(good, np.zeros(100, dtype=int), RULE) is None
    assert check_retrain_stagnation([0.3, 0.5, 0.4, 0.45, 0.5], RULE)["best_before"] == 0.5
    assert check_retrain_stagnation([0.3, 0.5, 0.4, 0.51, 0.45], RULE) is None
    assert check_retrain_stagnation([0.5, 0.4], RULE) is None


def test_a_falling_accuracy_raises_one_regression_alert_until_acknowledged(eth):
    correct = np.r_[np.arange(100) % 10 < 7, np.arange(100) % 10 < 3]  # 70 % then 30 %
    _outcomes(eth, correct)
    alerts = model_alerts_check(rule=RULE, notify=False)
    assert [(a.kind, a.model_name, a.horizon, a.metric) for a in alerts] == [("regression", "cnn", "5m", "accuracy")]
    assert alerts[0].detail["previous"] == pytest.approx(0.7) and alerts[0].detail["recent"] == pytest.approx(0.3)
    assert model_alerts_check(rule=RULE, notify=False) == []  # not repeated while open
    assert learning_summary()["alerts"][0]["kind"] == "regression"
    alert_acknowledge(alert=alerts[0])
    assert learning_summary()["alerts"] == []
    assert len(model_alerts_check(rule=RULE, notify=False)) == 1  # still regressed: alerted again


def test_a_steady_accuracy_raises_nothing(eth):
    _outcomes(eth, np.arange(200) % 10 < 6)
    assert model_alerts_check(rule=RULE, notify=False) == []


def test_a_model_no_better_than_always_hold_is_stagnant(eth):
    correct = np.arange(100) % 10 < 8
    labels = ["HOLD" if k % 10 < 8 else "BUY" for k in range(100)]  # right exactly where HOLD is right
    _outcomes(eth, correct, labels)
    (alert,) = model_alerts_check(rule=RULE, notify=False)
    assert alert.kind == "stagnation" and alert.metric == "accuracy_vs_hold"
    assert alert.detail["baseline_hold"] == pytest.approx(0.8)


def test_retrains_that_never_beat_the_live_checkpoint_are_stagnation():
    for state in ("promoted", "refused", "kept", "shadow", "refused", "skipped", "failed"):  # oldest first
        TrainingRun.objects.create(model_name="dqn", kind="fine_tune", state=state, metric_name="val_mean_reward_bps")
    (alert,) = model_alerts_check(rule=RULE, notify=False)
    assert (alert.kind, alert.model_name, alert.metric) == ("stagnation", "dqn", "val_mean_reward_bps")
    assert len(alert.detail["runs"]) == 3 and "none of the last 3" in alert.message


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received = []
    yield f"http://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()
    server.server_close()


def test_an_alert_is_sent_by_email_and_to_the_webhook(eth, settings, webhook, mailoutbox):
    settings.GOGO_ALERT_EMAILS = ["ops@example.com"]
    settings.GOGO_ALERT_WEBHOOK_URL = webhook
    _outcomes(eth, np.r_[np.arange(100) % 10 < 7, np.arange(100) % 10 < 3])
    (alert,) = model_alerts_check(rule=RULE)
    alert.refresh_from_db()
    assert alert.notified == "email,webhook" and alert.notify_error == ""
    assert mailoutbox[0].to == ["ops@example.com"] and "regression" in mailoutbox[0].subject
    content_type, body = _Hook.received[0]
    assert content_type == "application/json"
    assert body["kind"] == "regression" and body["model_name"] == "cnn" and body["instrument"] == "ETHUSDT"


def test_a_failing_webhook_is_logged_stored_and_counted_never_raised(eth, settings, caplog):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.GOGO_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{port}/"
    before = alert_notify_failures()
    _outcomes(eth, np.r_[np.arange(100) % 10 < 7, np.arange(100) % 10 < 3])
    (alert,) = model_alerts_check(rule=RULE)
    alert.refresh_from_db()
    assert alert.notified == "" and alert.notify_error.startswith("webhook: URLError")
    assert alert_notify_failures() == before + 1
    assert "notification failed" in caplog.text
    assert ModelAlert.objects.count() == 1
