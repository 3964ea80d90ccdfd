"""The replacement rule on a shared held-out range, the online fine-tune from scored predictions,
progress reporting, and the training tasks."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import torch

from apps.market.convert import ms_to_datetime
from apps.market.models import Instrument
from apps.predictions import learning, services
from apps.predictions.models import ModelCheckpoint, Prediction, PredictionOutcome, TrainingRun
from apps.predictions.selectors import checkpoint_ranked
from ml.features.package import pack_input
from ml.models.checkpoint import save_checkpoint
from ml.models.live import untrained
from ml.models.market import MarketModel
from ml.training.cases import cases_from_scored

pytestmark = pytest.mark.django_db
T0 = 1_893_456_000_000
TINY = {"embed": 4, "hidden": 4}


@pytest.fixture
def eth():
    return Instrument.objects.get(venue="binance", symbol="ETHUSDT")


def _package(rng, trend: float = 0.0, family: str = "cnn") -> dict[str, np.ndarray]:
    """An input package of ``family``'s layout (``ml.models.live.package``): random groups, every
    one present; ``trend`` > 0 lifts the newest 1m closes (a learnable signal)."""
    out = {}
    for name, shape in untrained(family, **TINY).shapes.items():
        values = rng.normal(0, 1, shape).astype(np.float32)
        if name == "eth_1m":
            values[-10:, 3] += 1500 * trend
        out[name], out[f"mask_{name}"] = values, np.array([True])
    return out


def _constant_cnn(action: int) -> MarketModel:
    """A CNN that always answers ``action`` (ACTIONS index) at every horizon."""
    model = untrained("cnn", **TINY)
    with torch.no_grad():
        model.head.weight.zero_()
        bias = torch.zeros(len(model.config.horizons_min), 3)
        bias[:, action] = 10.0
        model.head.bias.copy_(bias.reshape(-1))
    return model.eval()


def _register(registry: Path, model, metric: float, version: str) -> ModelCheckpoint:
    path = registry / f"cnn-{version}.pt"
    sha = save_checkpoint(path, model, model.config, {"val_macro_f1": metric}, (0, 1000))
    return services.checkpoint_register(model_name="cnn", version=version, path=path, sha256=sha,
                                        config=model.config.to_dict(), metrics={"val_macro_f1": metric},
                                        data_range=(0, 1000), validation_metric=metric)


def _val(returns: list[float]):
    rng = np.random.default_rng(0)
    return cases_from_scored([_package(rng) for _ in returns], T0 + 60_000 * np.arange(len(returns)),
                             np.array(returns), threshold=0.002)


def _candidate(model, val) -> ModelCheckpoint | None:
    run = TrainingRun.objects.create(model_name="cnn", kind="fine_tune", metric_name="val_macro_f1")
    row = learning.checkpoint_register_heldout(model_name="cnn", model=model, metrics={"n_train": 10},
                                               data_range=(0, 2000), val=val, run=run, tag="ft")
    run.refresh_from_db()
    return row, run


def test_a_new_checkpoint_is_measured_beside_the_live_one_on_the_same_range_and_goes_to_shadow(registry):
    live = _register(registry, _constant_cnn(2), 0.9, "hold")  # always HOLD; its stored metric from an old range
    row, run = _candidate(_constant_cnn(0), _val([0.01] * 12))  # always BUY; every held-out move is +1 %
    live.refresh_from_db()
    assert run.state == "shadow" and row.state == "shadow" and not row.is_active
    assert live.is_active and live.state == "live"  # only the promotion check on live seconds replaces it
    # both measured on the same 12 held-out cases: net bps per trade after the 20 bps round trip
    assert row.net_edge_bps == pytest.approx(100 - 20) and row.metrics["heldout"]["net_edge_bps_per_trade"]["n"] == 12
    assert row.metrics["validation"]["net_edge_bps_per_trade"]["mean"] == pytest.approx(80)
    assert live.net_edge_bps == 0.0 and live.metrics["heldout"]["net_edge_bps_per_trade"]["n"] == 0  # never trades
    assert live.validation_metric == 0.0 and run.active_metric == 0.0 and run.candidate_metric == pytest.approx(1 / 3)
    assert [c.pk for c in checkpoint_ranked(model_name="cnn")] == [row.pk, live.pk]
    assert "shadow" in run.detail["why"] and run.detail["net_edge"]["mean"] == pytest.approx(80)


def test_a_candidate_whose_calls_do_not_cover_the_cost_ranks_below_always_hold(registry):
    live = _register(registry, _constant_cnn(2), 0.1, "hold")
    row, run = _candidate(_constant_cnn(0), _val([0.001] * 12))  # +10 bps moves: BUY loses 10 bps after costs
    assert row.net_edge_bps == pytest.approx(10 - 20) and run.state == "shadow"
    assert [c.pk for c in checkpoint_ranked(model_name="cnn")] == [live.pk, row.pk]


def _scored_history(eth, n: int, seed: int = 0) -> None:
    """``n`` CNN predictions 5 minutes apart with input packages and outcomes at the CNN's trade
    horizon (60m) that follow the trend."""
    rng = np.random.default_rng(seed)
    ups = rng.random(n) < 0.5
    preds = Prediction.objects.bulk_create([
        Prediction(instrument=eth, model_name="cnn", ts_event=ms_to_datetime(T0 + k * 300_000), status="predicted",
                   action="HOLD", prob_buy=0.2, prob_sell=0.2, prob_hold=0.6, confidence=0.6,
                   input_package=pack_input(_package(rng, 0.002 if up else -0.002)))
        for k, up in enumerate(ups)])
    PredictionOutcome.objects.bulk_create([
        PredictionOutcome(prediction=p, horizon="60m", instrument=eth, model_name="cnn", ts_event=p.ts_event,
                          action="HOLD", confidence=0.6, price_start=Decimal(100), price_end=Decimal(100.5 if up else 99.5),
                          realized_return=0.005 if up else -0.005, label="BUY" if up else "SELL", correct=False,
                          pnl_bps=0.0, brier=0.5)
        for p, up in zip(preds, ups, strict=True)])


def test_the_fine_tune_task_trains_on_scored_predictions_and_sends_the_checkpoint_to_shadow(registry, eth, settings):
    from django.core.cache import cache

    from workers.training import fine_tune_model

    settings.GOGO_FINE_TUNE_EPOCHS = 2
    live = _register(registry, untrained("cnn", **TINY), 0.2, "live")
    _scored_history(eth, 160)
    run = TrainingRun.objects.get(pk=fine_tune_model.apply(args=("cnn",)).get())
    assert run.state == "shadow" and run.base_checkpoint_id == live.pk, run.reason
    assert run.n_val >= 30 and run.n_train >= 100 and run.n_train + run.n_val <= 160
    assert run.candidate_metric is not None and run.active_metric is not None
    new = run.checkpoint
    assert Path(new.path).exists() and new.metrics["replacement"]["candidate_metric"] == run.candidate_metric
    assert new.metrics["sources"]["train"]["scored"] == run.n_train
    assert new.state == "shadow" and not new.is_active and ModelCheckpoint.objects.get(is_active=True).pk == live.pk
    assert new.net_edge_bps is not None and new.metrics["heldout"]["net_edge_bps_per_trade"]["n"] >= 0
    progress = cache.get("gogo:training:cnn")
    assert progress["state"] == run.state and progress["epoch"] == 2 and progress["total"] == 2
    print(f"cnn fine-tune through the task: {run.detail['samples_per_second']:.0f} samples/s")


def test_a_fine_tune_without_enough_cases_is_skipped_saying_why_and_how_many_it_needs(registry, eth):
    from apps.predictions.templatetags.learning import learning_panel

    _register(registry, untrained("cnn", **TINY), 0.2, "live")
    _scored_history(eth, 20)
    run = learning.model_fine_tune(model_name="cnn", instrument=eth)
    assert run.state == "skipped" and run.checkpoint is None and run.cases_needed == 64 + 16
    assert run.n_train + run.n_val <= 20 and run.detail["n_train"] == run.n_train < 64
    assert f"{run.n_train + run.n_val} of the 80 it needs" in run.reason and "needs 64" in run.reason
    progress = learning.training_progress_get(model_name="cnn")
    assert progress["state"] == "skipped" and progress["run"] == run.pk and progress["message"] == run.reason
    shown = next(t for t in learning_panel()["training"] if t["model"] == "cnn")
    assert shown["state"] == "skipped" and shown["message"] == run.reason


@pytest.fixture
def isolated_layer(settings):
    """The configured channel layer under a prefix of this test only (no leak between runs)."""
    import uuid

    layer = dict(settings.CHANNEL_LAYERS["default"])
    if "RedisChannelLayer" in layer["BACKEND"]:
        layer["CONFIG"] = {**layer.get("CONFIG", {}), "prefix": f"test-{uuid.uuid4().hex[:10]}"}
    settings.CHANNEL_LAYERS = {"default": layer}


@pytest.mark.usefixtures("isolated_layer")
def test_training_progress_reaches_the_dashboard_group():
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("dashboard", channel)
    try:
        report = learning.training_progress_reporter(model_name="dqn", kind="fine_tune")
        report.epoch(1, 3, 0.5, 1.25)
        messages = [async_to_sync(layer.receive)(channel) for _ in range(2)]
    finally:
        async_to_sync(layer.group_discard)("dashboard", channel)
    assert [m["type"] for m in messages] == ["training.progress"] * 2
    assert messages[1]["training"] | {"started_at": None} == {
        "model": "dqn", "kind": "fine_tune", "run": None, "state": "running", "epoch": 1, "total": 3, "loss": 0.5,
        "metric": 1.25, "fraction": pytest.approx(1 / 3), "message": "", "started_at": None}


def test_paper_round_trips_become_dqn_cases_with_the_reward_of_the_action_taken(eth):
    from django.contrib.auth import get_user_model

    from apps.predictions.cases import training_cases_collect
    from apps.trading.models import Decision, Fill, Order, TradingAccount

    account = TradingAccount.objects.create(owner=get_user_model().objects.create_user("paper"), name="paper")
    rng = np.random.default_rng(0)
    btc = Instrument.objects.get(venue="binance", symbol="BTCUSDT")

    def fill(k: int, side: str, price: str, with_prediction: bool) -> None:
        ts = ms_to_datetime(T0 + k * 60_000)
        prediction = Prediction.objects.create(
            instrument=eth, model_name="cnn", ts_event=ts, status="predicted", action=side, prob_buy=0.6,
            prob_sell=0.2, prob_hold=0.2, confidence=0.6,
            input_package=pack_input(_package(rng, family="dqn")) if with_prediction else None)
        decision = Decision.objects.create(account=account, instrument=eth, ts_event=ts, action=side, confidence=0.6,
                                           threshold=0.5, prediction=prediction)
        order = Order.objects.create(account=account, instrument=eth, decision=decision, client_order_id=f"t-{k}",
                                     side=side, quantity=Decimal(1), ts_event=ts, status="FILLED")
        Fill.objects.create(order=order, seq=0, price=Decimal(price), quantity=Decimal(1), fee=Decimal("0.1"),
                            ts_event=ts)

    fill(0, "BUY", "100", True)   # long 100 -> 102: +2 - 0.2 fees
    fill(5, "SELL", "102", True)
    fill(10, "SELL", "102", True)  # short 102 -> 101: +1 - 0.2
    fill(15, "BUY", "101", True)
    fill(20, "BUY", "100", True)  # still open at the end: no case
    model = untrained("dqn", **TINY)
    cases = training_cases_collect(model_name="dqn", model=model, instrument=eth, reference=btc, start_ms=T0,
                                   end_ms=T0 + 3_600_000)
    assert cases.counts() == {"scored": 0, "annotation": 0, "paper": 2}
    assert cases.target.tolist() == [0, 1] and cases.times.tolist() == [T0, T0 + 600_000]
    assert cases.rewards[0, 0] == pytest.approx(1e4 * 1.8 / 100) and np.isnan(cases.rewards[0, 1:]).all()
    assert cases.rewards[1, 1] == pytest.approx(1e4 * 0.8 / 102)


def test_a_full_retrain_is_ranked_on_the_same_held_out_cases_when_there_are_enough(registry, eth, monkeypatch):
    from workers.training import train_model

    live = _register(registry, _constant_cnn(2), 0.9, "hold")
    _scored_history(eth, 160)

    def trainer(progress):
        progress(1.0, "done")
        return services.Trained(_constant_cnn(0), {"val_macro_f1": 0.05, "n_train": 1000}, (0, 60_000))

    monkeypatch.setitem(services.TRAINERS, "cnn", trainer)
    run = TrainingRun.objects.get(pk=train_model.apply(args=("cnn",)).get())
    new = run.checkpoint
    live.refresh_from_db()
    # Held-out labels are BUY or SELL: always-BUY scores F1 1/3 of BUY's share, always-HOLD scores 0.
    assert run.kind == "full" and run.active_metric == 0.0 and run.candidate_metric > 0 and run.state == "shadow"
    assert new.state == "shadow" and new.validation_metric == run.candidate_metric and live.validation_metric == 0.0
    assert live.is_active and new.metrics["heldout"]["n"] == run.n_val
    # +-50 bps moves: always-BUY earns +30 bps on the up half and loses 70 on the down half
    assert new.net_edge_bps == pytest.approx(new.metrics["heldout"]["net_edge_bps_per_trade"]["mean"])


def test_a_full_retrain_learns_the_history_then_the_cases_and_is_judged_on_later_held_out_cases(
        registry, eth, monkeypatch, settings):
    from ml.models.checkpoint import load_checkpoint
    from workers.training import train_model

    settings.GOGO_FINE_TUNE_EPOCHS = 2
    _register(registry, _constant_cnn(2), 0.9, "hold")
    _scored_history(eth, 160)
    from_history = untrained("cnn", seed=1, **TINY)
    before = {k: v.clone() for k, v in from_history.state_dict().items()}

    def trainer(progress):  # stands in for the trainer on the history files
        progress(1.0, "history done")
        return services.Trained(from_history, {"val_macro_f1": 0.05, "n_train": 1000}, (0, 60_000))

    monkeypatch.setitem(services.TRAINERS, "cnn", trainer)
    run = TrainingRun.objects.get(pk=train_model.apply(args=("cnn",)).get())
    new = run.checkpoint
    stage = new.metrics["case_training"]

    assert stage["sources"]["train"]["scored"] == stage["n_train"] and 100 <= stage["n_train"] < 160
    assert stage["epochs"] == 2 and run.n_train == 1000 + stage["n_train"] == new.metrics["n_train"]
    assert run.n_val == stage["n_val"] >= 30
    assert stage["period_ms"]["train"][1] < new.metrics["heldout"]["range_ms"][0]  # held out = later cases
    saved, _ = load_checkpoint(Path(new.path), model_name="cnn")
    assert any(not torch.equal(saved.state_dict()[k], before[k]) for k in before if before[k].is_floating_point())
    # Measured on the held-out cases: the same metric the case stage ended on; the live always-HOLD
    # model scores 0 there (every label is BUY or SELL). It goes to shadow, not live.
    assert run.candidate_metric == pytest.approx(stage["val_macro_f1"]) and run.active_metric == 0.0
    assert run.state == "shadow" and new.state == "shadow" and not new.is_active
    assert new.data_end == ms_to_datetime(stage["period_ms"]["train"][1] + 1000)
