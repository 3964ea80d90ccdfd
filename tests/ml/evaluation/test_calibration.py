"""Calibration: temperature and prior shrinkage on validation, kept only with demonstrated skill."""
import numpy as np
import pytest

from ml.evaluation.calibration import Calibration, class_net_returns, fit_calibration, softmax

NET = {"BUY": [30.0, -50.0, -21.0], "SELL": [-72.0, 8.0, -21.0]}


def _labels(n: int, seed: int, p=(0.3, 0.3, 0.4)) -> np.ndarray:
    return np.random.default_rng(seed).choice(3, size=n, p=p)


def test_logits_without_information_forecast_the_prior():
    y = _labels(6000, 0)
    noise = np.random.default_rng(1).normal(size=(6000, 3))
    cal = fit_calibration(noise, y, prior=np.array([0.3, 0.3, 0.4]), class_net_bps=NET, cost_bps=21.0, block=200)
    assert cal.prior_weight == 1.0 and cal.val_log_loss == pytest.approx(cal.val_prior_log_loss)
    assert np.allclose(cal.probs(noise[:5]), [0.3, 0.3, 0.4])


def test_informative_logits_keep_their_skill_and_give_edges_in_bps():
    y = _labels(6000, 2)
    logits = np.eye(3)[y] * 1.5 + np.random.default_rng(3).normal(size=(6000, 3))
    cal = fit_calibration(logits, y, prior=np.array([0.3, 0.3, 0.4]), class_net_bps=NET, cost_bps=21.0, block=200)
    assert cal.prior_weight < 1.0 and cal.val_log_loss < cal.val_prior_log_loss - 0.05
    edge = cal.edge_bps(cal.probs(np.array([[5.0, 0.0, 0.0]])))
    assert edge[0, 0] > 0 > edge[0, 1]  # a confident BUY call: positive expected net return of buying


def test_being_flatter_than_the_prior_is_not_skill():
    y = _labels(6000, 4, p=(1 / 3, 1 / 3, 1 / 3))  # validation classes are uniform, training prior is not
    flat = np.zeros((6000, 3)) + np.random.default_rng(5).normal(scale=1e-3, size=(6000, 3))
    cal = fit_calibration(flat, y, prior=np.array([0.2, 0.2, 0.6]), class_net_bps=NET, cost_bps=21.0, block=200)
    assert cal.prior_weight == 1.0


def test_class_net_returns_are_the_mean_net_bps_per_true_class():
    r = np.array([0.01, 0.02, -0.01, 0.0005])
    y = np.array([0, 0, 1, 2])
    out = class_net_returns(r, y, 21.0)
    assert out["BUY"] == pytest.approx([150.0 - 21.0, -100.0 - 21.0, 5.0 - 21.0])
    assert out["SELL"] == pytest.approx([-150.0 - 21.0, 100.0 - 21.0, -5.0 - 21.0])


def test_a_calibration_round_trips_through_its_dict():
    cal = Calibration(temperature=2.0, prior_weight=0.25, prior=[0.3, 0.3, 0.4], class_net_bps=NET, cost_bps=21.0)
    again = Calibration.from_dict(cal.to_dict())
    z = np.array([[1.0, -1.0, 0.0]])
    assert np.allclose(again.probs(z), 0.25 * np.array([0.3, 0.3, 0.4]) + 0.75 * softmax(z / 2.0))
