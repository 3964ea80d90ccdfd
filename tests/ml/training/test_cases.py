"""Training cases (targets, rewards, round trips, held-out split) and the fine-tune loop."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.training.cases import (
    SOURCE_ANNOTATION,
    SOURCE_PAPER,
    TrainingCases,
    cases_from_annotations,
    cases_from_round_trips,
    cases_from_scored,
    complete_enough,
    heldout_split,
    round_trips,
)
from ml.training.fine_tune import evaluate, fine_tune


def _package(rng, trend: float = 0.0) -> dict[str, np.ndarray]:
    """Random-walk 1m/1h/1d windows; ``trend`` tilts the last 1m candles (a learnable signal)."""
    out = {}
    for name in ("primary_1m", "primary_1h", "primary_1d"):
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, 300)))
        if name == "primary_1m":
            close[-20:] *= np.exp(trend * np.arange(1, 21))
        candles = np.stack([close, close * 1.001, close * 0.999, close, np.full(300, 5.0)], axis=1)
        out[name] = candles.astype(np.float32)
        out[f"present_{name}"] = np.ones(300, dtype=bool)
    return out


def _learnable(n: int, seed: int = 0) -> TrainingCases:
    rng = np.random.default_rng(seed)
    ups = rng.random(n) < 0.5
    packages = [_package(rng, 0.002 if up else -0.002) for up in ups]
    returns = np.where(ups, 0.005, -0.005)
    return cases_from_scored(packages, np.arange(n) * 60_000, returns, threshold=0.002)


def test_scored_cases_take_the_model_threshold_and_every_action_reward():
    rng = np.random.default_rng(0)
    cases = cases_from_scored([_package(rng) for _ in range(3)], np.array([3, 1, 2]), np.array([0.01, -0.01, 0.001]),
                              threshold=0.002)
    assert cases.target.tolist() == [0, 1, 2] and cases.arrays["primary_1m"].shape == (3, 300, 5)
    np.testing.assert_allclose(cases.rewards[0], [80.0, -120.0, 0.0])
    ann = cases_from_annotations([_package(rng)], np.array([0]), ["short"], np.array([100.0]), np.array([98.0]))
    assert ann.target.tolist() == [1] and ann.rewards[0, 1] == pytest.approx(180.0) and ann.source[0] == SOURCE_ANNOTATION
    joined = TrainingCases.concat([cases, ann])
    assert joined.times.tolist() == [0, 1, 2, 3] and joined.counts() == {"scored": 3, "annotation": 1, "paper": 0}
    with pytest.raises(ValueError, match="unknown annotation sides"):
        cases_from_annotations([_package(rng)], np.array([0]), ["up"], np.array([1.0]), np.array([2.0]))


def test_round_trips_from_fills_flat_to_flat_including_a_reversal():
    # buy 1 @100, sell 1 @110 (long trip); sell 2 @110 -> short 2, buy 1 @100, buy 1 @105 (short trip)
    sides = np.array([1, -1, -1, 1, 1])
    qty = np.array([1.0, 1.0, 2.0, 1.0, 1.0])
    price = np.array([100.0, 110.0, 110.0, 100.0, 105.0])
    fee = np.array([0.1, 0.11, 0.22, 0.1, 0.105])
    trips = round_trips(sides, qty, price, fee, np.arange(5) * 1000)
    assert [(t.first_index, t.side) for t in trips] == [(0, 1), (2, -1)]
    assert trips[0].pnl == pytest.approx(10 - 0.21) and trips[0].reward_bps == pytest.approx(1e4 * 9.79 / 100)
    assert trips[1].pnl == pytest.approx(220 - 205 - 0.425) and trips[1].notional == pytest.approx(220)
    rng = np.random.default_rng(0)
    cases = cases_from_round_trips([_package(rng), _package(rng)], trips)
    assert cases.target.tolist() == [0, 1] and (cases.source == SOURCE_PAPER).all()
    assert np.isnan(cases.rewards[0, 1]) and cases.rewards[1, 1] == pytest.approx(trips[1].reward_bps)


def test_the_held_out_range_is_the_last_part_of_the_time_range_with_an_embargo():
    times = np.array([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    train, val = heldout_split(times, 0.2, embargo_ms=15)
    assert times[val].tolist() == [80, 90, 100] and times[train].tolist() == [0, 10, 20, 30, 40, 50, 60]
    assert complete_enough({"present_a": np.array([True] * 9 + [False])}, 0.9)
    assert not complete_enough({"present_a": np.array([True] * 8 + [False] * 2)}, 0.9)


def _market_cases(model, n: int, seed: int = 0) -> TrainingCases:
    """Scored cases of ``model``'s package layout (``ml.models.live.package``): random groups, the
    newest 1m closes tilted up before a +50 bps outcome and down before a -50 bps one."""
    rng = np.random.default_rng(seed)
    ups = rng.random(n) < 0.5
    packages = []
    for up in ups:
        package = {}
        for name, shape in model.shapes.items():
            values = rng.normal(0, 1, shape).astype(np.float32)
            if name == "eth_1m":
                values[-10:, 3] += 3.0 if up else -3.0
            package[name], package[f"mask_{name}"] = values, np.array([True])
        packages.append(package)
    return cases_from_scored(packages, np.arange(n) * 60_000, np.where(ups, 0.005, -0.005), threshold=0.002)


def test_fine_tuning_a_cnn_learns_a_signal_and_leaves_the_live_model_untouched():
    from ml.models.live import untrained

    live = untrained("cnn", embed=8, hidden=8)
    before = {k: v.clone() for k, v in live.state_dict().items()}
    data = _market_cases(live, 240)
    assert complete_enough({k: v[0] for k, v in data.arrays.items()})
    train, val = data.subset(np.arange(180)), data.subset(np.arange(180, 240))
    seen = []
    result = fine_tune("cnn", live, train, val, epochs=6, lr=5e-3, progress=lambda *a: seen.append(a))
    assert all(torch.equal(before[k], v) for k, v in live.state_dict().items())
    assert result.metrics["val_macro_f1"] == pytest.approx(evaluate("cnn", result.model, val))
    assert result.metrics["labels"] == {"BUY": int(np.sum(train.rewards[:, 0] > 0)),
                                        "SELL": int(np.sum(train.rewards[:, 1] > 0)), "HOLD": 0}
    assert result.metrics["val_macro_f1"] > max(evaluate("cnn", live, val), 0.5)
    assert [s[0] for s in seen] == [1, 2, 3, 4, 5, 6] and result.metrics["samples_per_second"] > 0
    assert result.model.serving.calibration == live.serving.calibration


def test_fine_tuning_the_dqn_regresses_q_on_known_rewards_only():
    from ml.models.live import untrained

    live = untrained("dqn", embed=8, hidden=8)
    data = _market_cases(live, 200, seed=1)
    data.rewards[::2, 1] = np.nan  # paper-like rows: unknown entries are masked
    train, val = data.subset(np.arange(150)), data.subset(np.arange(150, 200))
    result = fine_tune("dqn", live, train, val, epochs=8, lr=5e-3)
    assert np.isfinite(result.metrics["val_mean_reward_bps"])
    assert result.metrics["val_mean_reward_bps"] > max(evaluate("dqn", live, val), 0.0)


def test_fine_tune_refuses_too_few_cases_and_another_layout():
    from ml.models.live import untrained

    model = untrained("transformer", embed=8, hidden=8)
    data = _market_cases(model, 3)
    with pytest.raises(ValueError, match="2\\+ training cases"):
        fine_tune("transformer", model, data.subset(np.arange(1)), data, epochs=1)
    with pytest.raises(ValueError, match="lack the groups"):
        fine_tune("dqn", untrained("dqn"), data, data, epochs=1)
