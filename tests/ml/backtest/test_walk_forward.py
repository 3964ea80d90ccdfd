"""Walk-forward over the recorded candle history: windows, fold figures, no training on the test window."""
import numpy as np
import pytest

from ml.backtest.walk_forward import aggregate, fold_metrics, walk_forward, windows
from ml.models.output import ACTIONS
from ml.training.cnn_train import DEFAULT_TRAIN_END_MS, default_training_history

BUY, SELL, HOLD = (ACTIONS.index(a) for a in ("BUY", "SELL", "HOLD"))
DAY = 86_400_000


def test_windows_are_consecutive_equal_and_whole_minutes():
    spans = windows(0, 3 * DAY + 59_999, 2)
    assert spans == [(0, DAY), (DAY, 2 * DAY), (2 * DAY, 3 * DAY)]
    with pytest.raises(ValueError, match="folds"):
        windows(0, DAY, 0)
    with pytest.raises(ValueError, match="too short"):
        windows(0, 60_000, 3)


def test_fold_figures_follow_the_after_fee_trade_definition():
    actions = np.array([BUY, SELL, HOLD, BUY])
    labels = np.array([BUY, BUY, HOLD, SELL])
    returns = np.array([0.01, 0.005, 0.0, -0.004])
    m = fold_metrics(actions, labels, returns, (100.0, 101.0), horizon_min=2, fee=0.001)
    # BUY +1% -> 80 bps after 2 x 10 bps; SELL into +0.5% -> -70; BUY into -0.4% -> -60.
    assert m["trades"] == 3 and m["win_rate"] == pytest.approx(1 / 3)
    assert m["mean_trade_bps"] == pytest.approx((80 - 70 - 60) / 3)
    assert m["pnl_bps"] == pytest.approx(80)  # non-overlapping: samples 0 and 2 (a HOLD)
    assert m["accuracy"] == 0.5 and m["hold_accuracy"] == 0.25 and m["buy_and_hold_bps"] == pytest.approx(100)
    assert m["actions"] == {"BUY": 2, "SELL": 1, "HOLD": 1}
    agg = aggregate([m, {**m, "pnl_bps": -10.0, "n_test": 4, "accuracy": 0.25}])
    assert agg["total_pnl_bps"] == pytest.approx(70) and agg["folds_beating_always_hold"] == 1
    assert agg["pooled_accuracy"] == pytest.approx(0.375) and agg["pnl_bps"]["mean"] == pytest.approx(35)


@pytest.fixture(scope="module")
def history():
    return default_training_history()


def test_each_fold_trains_before_its_test_window_and_a_rerun_gives_the_same_figures(history):
    start = DEFAULT_TRAIN_END_MS - 3 * DAY // 2
    first = walk_forward(history, model_name="cnn", folds=2, start_ms=start, end_ms=DEFAULT_TRAIN_END_MS, epochs=1)
    again = walk_forward(history, model_name="cnn", folds=2, start_ms=start, end_ms=DEFAULT_TRAIN_END_MS, epochs=1)
    assert len(first["folds"]) == 2 and first["windows"][0][0] == start
    for k, fold in enumerate(first["folds"]):
        assert fold["train"] == first["windows"][k] and fold["test"] == first["windows"][k + 1]
        assert fold["train"][1] == fold["test"][0]  # trained only on data before the test window
        assert fold["n_train"] > 300 and fold["n_test"] > 500 and 0 <= fold["accuracy"] <= 1
        assert sum(fold["actions"].values()) == fold["n_test"]
    assert first["aggregate"]["n_test"] == sum(f["n_test"] for f in first["folds"])
    strip = [{k: v for k, v in f.items() if k != "train_seconds"} for f in first["folds"]]
    assert strip == [{k: v for k, v in f.items() if k != "train_seconds"} for f in again["folds"]]


def test_walk_forward_refuses_models_without_candle_history(history):
    with pytest.raises(ValueError, match="cnn or dqn"):
        walk_forward(history, model_name="transformer", folds=1, start_ms=DEFAULT_TRAIN_END_MS - DAY,
                     end_ms=DEFAULT_TRAIN_END_MS)
