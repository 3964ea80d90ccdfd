"""The purged walk-forward on real 2025 candles: fold layout, purging, the report and its invariants."""
import numpy as np
import pytest

from ml.evaluation.walk_forward import WalkForwardParams, fold_windows, run_walk_forward, split_indices

DAY = 86_400_000
START = 1_752_192_000_000  # 2025-07-11 00:00 UTC


def test_folds_are_consecutive_equal_windows_in_whole_minutes():
    w = fold_windows(START, START + 7 * DAY + 123_456, 6)
    assert len(w) == 7 and all(b - a == w[0][1] - w[0][0] for a, b in w)
    assert all(w[i][1] == w[i + 1][0] for i in range(6)) and (w[0][1] - w[0][0]) % 60_000 == 0


def test_training_labels_never_reach_the_test_window_and_earlier_tests_are_embargoed():
    p = WalkForwardParams(start_ms=START, end_ms=START + 4 * DAY, folds=3, embargo_min=120)
    times = np.arange(START, START + 4 * DAY, 60_000, dtype=np.int64) + 59_000
    windows = fold_windows(p.start_ms, p.end_ms, p.folds)
    for k in (1, 2, 3):
        train, val, test = split_indices(times, windows, k, p)
        horizon = p.purge_min * 60_000
        assert times[train].max() + horizon < times[val].min()  # purged against validation
        assert times[val].max() + horizon < windows[k][0]  # no label reaches the test window
        assert times[test].min() >= windows[k][0] and times[test].max() < windows[k][1]
        for j in range(1, k):  # the embargo after each earlier test fold is not trained on
            lo = windows[j][1]
            assert not np.any((times[train] >= lo) & (times[train] < lo + 120 * 60_000))


def test_bad_parameters_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="folds"):
        WalkForwardParams(start_ms=START, end_ms=START + DAY, folds=0)
    with pytest.raises(ValueError, match="models"):
        WalkForwardParams(start_ms=START, end_ms=START + DAY, models=("lstm",))
    with pytest.raises(ValueError, match="too short"):
        WalkForwardParams(start_ms=START, end_ms=START + 3_600_000, folds=2)


@pytest.fixture(scope="module")
def report(candles_2025):
    eth, btc = candles_2025
    p = WalkForwardParams(start_ms=START, end_ms=START + 2 * DAY, folds=2, epochs=1, max_train=1500,
                          importance_samples=200)
    from ml.models.live import serving_of, untrained

    served = {name: untrained(name) for name in ("cnn", "transformer", "dqn")}
    live = ({n: (m, serving_of(m).calibration, serving_of(m).upstream) for n, m in served.items()},
            {n: (START, START + DAY) for n in served})  # "trained" on the first day: in sample for fold 1
    return run_walk_forward(eth, btc, p, live=live)


def test_the_report_has_every_model_orchestrator_and_baseline_per_fold_and_in_total(report):
    assert len(report["folds"]) == 2
    for scope in (*report["folds"], report["total"]):
        assert set(scope["models"]) == {"cnn", "transformer", "dqn"}
        assert set(scope["baselines"]) == {"always_hold", "buy_and_hold", "momentum", "random", "live_checkpoint"}
        for perf in (*scope["models"].values(), scope["orchestrator"]):
            assert perf["hold_pnl_bps"] == 0.0 and perf["log_loss"] is not None
            assert {"trades", "net_pnl_bps", "gross_edge_bps_per_trade", "buy_and_hold_bps", "prior_log_loss"} <= set(perf)
    fold = report["folds"][0]
    assert {"deflated_sharpe", "hit_rate_p_value", "costs_bps", "days"} <= set(fold)
    assert set(fold["models"]["cnn"]["accuracy"]) == {"1m", "5m", "15m", "60m"}
    assert fold["orchestrator"]["accuracy"]["60m"]["majority_rate"] >= 1 / 3  # the mixture's trade horizon
    acc = fold["models"]["cnn"]["accuracy"]["60m"]
    assert 0.0 <= acc["accuracy"] <= 1.0 and 1 / 3 <= acc["majority_rate"] <= 1.0


def test_buy_and_hold_pays_the_round_trip_and_always_hold_is_zero(report):
    fold = report["folds"][0]
    bh = fold["baselines"]["buy_and_hold"]
    assert bh["trades"] == 1 and bh["costs_bps"]["fees"] == pytest.approx(20.0)
    assert fold["baselines"]["always_hold"]["net_pnl_bps"] == 0.0
    assert fold["baselines"]["random"]["trades"] == fold["orchestrator"]["trades"]


def test_calibrated_models_are_never_worse_than_the_prior_on_validation_and_trade_only_with_an_edge(report):
    for fold in report["folds"]:
        for perf in fold["models"].values():
            cal = perf["calibration"]
            assert cal["val_log_loss"] <= cal["val_prior_log_loss"] + 1e-12
            for trade in perf["trades_table"]:
                assert trade["side"] == "BUY" and "margin" in trade["reason"]  # long-only spot, edge rule
            for row in perf["trades_table"]:
                assert row["net_bps"] == pytest.approx(row["gross_bps"] - 21.0, abs=1e-3)


def test_permutation_importance_names_absent_groups_and_scores_present_ones(report):
    for kind in ("calibrated", "raw"):
        imp = report["folds"][0]["models"]["cnn"]["importance"][kind]
        assert imp["cob_levels"] is None and imp["eth_1s"] is None  # no COB or 1 s data in candle history
        assert isinstance(imp["eth_1m"], float) and isinstance(imp["btc_1m"], float)
    raw = report["folds"][0]["models"]["cnn"]["importance"]["raw"]
    assert any(v for v in raw.values() if v is not None)  # the network reads its inputs


def test_the_live_checkpoints_are_a_baseline_marked_in_sample_where_their_data_overlap(report):
    first, second = (f["baselines"]["live_checkpoint"] for f in report["folds"])
    assert first["models"] == ["cnn", "dqn", "transformer"]
    assert first["in_sample"] is True and "in sample" in first["note"]  # fold 1 tests hours 16-32
    assert second["in_sample"] is False and "out of sample" in second["note"]
    for b in (first, second):
        assert b["costs_bps"]["fees"] == pytest.approx(20.0 * b["trades"])  # taker fee both ways per trade
