"""Statistics of the evaluation lab: known values, paper examples, seeded bootstrap outputs, properties."""
from __future__ import annotations

import math
import statistics
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.evaluation import stats

_floats = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
_DAY = 86_400


def _ar1(phi: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0]
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


# ----------------------------------------------------------------------------- mean_summary and the bootstrap

def test_the_t_test_matches_the_closed_form_for_four_degrees_of_freedom():
    out = stats.mean_summary([1.0, 2.0, 3.0, 4.0, 5.0])
    t = 3.0 / math.sqrt(2.5 / 5)  # mean / (sd / sqrt(n)) = 3 sqrt(2)
    # Student t CDF for nu = 4: 1/2 + 3/8 u (1 - u^2 / 12 ... ) with u = t / sqrt(1 + t^2 / 4)
    cdf = 0.5 + 3 / 8 * t / math.sqrt(1 + t * t / 4) * (1 - t * t / (12 * (1 + t * t / 4)))

    assert out["mean"] == 3.0 and out["n"] == 5
    assert out["t"] == pytest.approx(t, rel=1e-12)
    assert out["p"] == pytest.approx(2 * (1 - cdf), rel=1e-9)
    assert out["lo"] < 3.0 < out["hi"]


def test_a_seeded_bootstrap_gives_pinned_intervals():
    x = np.arange(1.0, 21.0)

    iid = stats.mean_summary(x, n_boot=500, seed=7)
    blocks = stats.mean_summary(x, n_boot=500, seed=7, block=4)

    assert (iid["lo"], iid["hi"]) == pytest.approx((8.4, 12.97625), abs=1e-9)
    assert (blocks["lo"], blocks["hi"]) == pytest.approx((6.395, 14.9), abs=1e-9)
    assert stats.bootstrap_ci(x, n_boot=500, seed=7, stat="median") == pytest.approx((7.0, 14.5))


def test_it_is_deterministic_for_a_seed():
    x = np.random.default_rng(3).normal(0.2, 1.0, 300)

    assert stats.mean_summary(x, seed=11, block=5) == stats.mean_summary(x, seed=11, block=5)
    assert stats.mean_summary(x, seed=11)["lo"] != stats.mean_summary(x, seed=12)["lo"]


def test_the_iid_interval_matches_normal_theory():
    x = np.random.default_rng(0).normal(0.0, 2.0, 400)

    out = stats.mean_summary(x, n_boot=4000)

    assert out["hi"] - out["lo"] == pytest.approx(2 * 1.96 * x.std(ddof=1) / 20, rel=0.1)


def test_blocks_widen_the_interval_of_an_autocorrelated_series():
    x = _ar1(0.8, 2000, seed=1)  # the iid bootstrap understates the error by about sqrt(1.8 / 0.2) = 3

    iid = stats.bootstrap_ci(x)
    blocks = stats.bootstrap_ci(x, block=50)

    assert blocks[1] - blocks[0] > 2 * (iid[1] - iid[0])


def test_short_or_constant_series_give_none():
    assert stats.mean_summary([]) == {"mean": None, "lo": None, "hi": None, "t": None, "p": None, "n": 0}
    assert stats.mean_summary([2.5]) == {"mean": 2.5, "lo": None, "hi": None, "t": None, "p": None, "n": 1}
    constant = stats.mean_summary([0.5] * 10)
    assert (constant["lo"], constant["hi"], constant["t"], constant["p"]) == (0.5, 0.5, None, None)


@pytest.mark.parametrize("x, kwargs, match", [
    ([1.0, math.nan], {}, "non-finite"),
    ([[1.0, 2.0]], {}, "1-D"),
    ([1.0, 2.0], {"alpha": 0.0}, "alpha"),
    ([1.0, 2.0], {"block": 0}, "block"),
    ([1.0, 2.0], {"n_boot": 0}, "n_boot"),
])
def test_mean_summary_rejects_bad_input(x, kwargs, match):
    with pytest.raises(ValueError, match=match):
        stats.mean_summary(x, **kwargs)


def test_bootstrap_ci_rejects_an_unknown_stat_and_a_single_value():
    with pytest.raises(ValueError, match="stat"):
        stats.bootstrap_ci([1.0, 2.0], stat="mode")
    with pytest.raises(ValueError, match="at least 2"):
        stats.bootstrap_ci([1.0])


@settings(max_examples=60, deadline=None)
@given(st.lists(_floats, min_size=2, max_size=60), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_the_interval_lies_within_the_data(values, block, seed):
    x = np.array(values)

    out = stats.mean_summary(x, n_boot=200, block=block, seed=seed)

    assert x.min() - 1e-9 <= out["lo"] <= out["hi"] <= x.max() + 1e-9


# ----------------------------------------------------------------------------- paired difference, binomial

def test_a_uniformly_better_model_is_better_in_every_resample():
    b = np.random.default_rng(5).normal(size=200)

    out = stats.paired_difference_summary(b + 0.5, b)

    assert out["mean"] == pytest.approx(0.5)
    assert out["prob_better"] == 1.0
    assert stats.paired_difference_summary(b - 0.5, b)["prob_better"] == 0.0


def test_prob_better_is_the_share_of_positive_resample_means():
    rng = np.random.default_rng(9)
    a, b = rng.normal(0.05, 1.0, 500), rng.normal(0.0, 1.0, 500)

    out = stats.paired_difference_summary(a, b, n_boot=4000)
    se = np.std(a - b, ddof=1) / math.sqrt(500)

    assert out["prob_better"] == pytest.approx(NormalDist().cdf(out["mean"] / se), abs=0.03)
    assert stats.paired_difference_summary([1.0], [0.0])["prob_better"] is None


def test_paired_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="same length"):
        stats.paired_difference_summary([1.0, 2.0], [1.0])


def test_binomial_p_value_known_values():
    assert stats.binomial_p_value(60, 100) == pytest.approx(0.028444, abs=1e-6)
    assert stats.binomial_p_value(0, 10) == pytest.approx(1.0)
    assert stats.binomial_p_value(10, 10) == pytest.approx(0.5**10)
    assert stats.binomial_p_value(3, 4, p=0.25) == pytest.approx(4 * 0.25**3 * 0.75 + 0.25**4)
    assert stats.binomial_p_value(0, 0) is None


@pytest.mark.parametrize("args", [(5, 4), (-1, 4), (1.5, 4), (1, 4, 1.5)])
def test_binomial_rejects_bad_counts(args):
    with pytest.raises(ValueError):
        stats.binomial_p_value(*args)


# ----------------------------------------------------------------------------- ratios and drawdown

RETURNS = np.tile([0.01, -0.02, 0.015], 12)  # 36 daily returns: mean 0.005 / 3, max drawdown 0.02


def test_max_drawdown_known_values():
    assert stats.max_drawdown([0, 10, 4, 12, 1]) == 11.0
    assert stats.max_drawdown([]) == 0.0
    assert stats.max_drawdown([1, 2, 3]) == 0.0


@given(st.lists(_floats, max_size=50))
def test_max_drawdown_is_between_zero_and_the_range(values):
    dd = stats.max_drawdown(values)

    assert 0.0 <= dd <= (np.ptp(values) if values else 0.0)


def test_a_month_of_daily_returns_is_annualised():
    sharpe = stats.annualised_ratio("sharpe", RETURNS, period_seconds=_DAY, span_seconds=36 * _DAY)
    sortino = stats.annualised_ratio("sortino", RETURNS, period_seconds=_DAY, span_seconds=36 * _DAY)
    calmar = stats.annualised_ratio("calmar", RETURNS, period_seconds=_DAY, span_seconds=36 * _DAY)
    mean = 0.005 / 3

    assert sharpe["annualised"] and sortino["annualised"] and calmar["annualised"]
    assert sharpe["value"] == pytest.approx(mean / statistics.stdev(RETURNS.tolist()) * math.sqrt(365))
    assert sortino["value"] == pytest.approx(mean / math.sqrt(0.02**2 / 3) * math.sqrt(365))
    assert calmar["value"] == pytest.approx(mean * 365 / 0.02)
    assert calmar["reason"] == "annualised: 365 periods of 86400 s in 365 days"


def test_a_short_window_gives_the_per_period_ratio_and_says_why():
    out = stats.annualised_ratio("calmar", RETURNS, period_seconds=24, span_seconds=864)

    assert out == {"value": pytest.approx(0.005 / 3 / 0.02), "annualised": False,
                   "reason": "window 0.01 days < 30 days: per-period ratio, not annualised"}
    few = stats.annualised_ratio("sharpe", RETURNS[:10], period_seconds=_DAY * 5, span_seconds=50 * _DAY)
    assert not few["annualised"] and few["reason"] == "10 observations < 30: per-period ratio, not annualised"


@pytest.mark.parametrize("kind, returns, reason", [
    ("sharpe", [0.01] * 40, "zero variance"),
    ("sortino", [0.01, 0.02] * 20, "no losing period"),
    ("calmar", [0.01, 0.02] * 20, "no drawdown"),
    ("sharpe", [0.01], "too few"),
])
def test_undefined_ratios_are_none_with_a_reason(kind, returns, reason):
    out = stats.annualised_ratio(kind, returns, period_seconds=_DAY, span_seconds=40 * _DAY)

    assert out["value"] is None and not out["annualised"]
    assert reason in out["reason"]


@pytest.mark.parametrize("kind, kwargs, match", [
    ("omega", {}, "kind"),
    ("sharpe", {"period_seconds": 0.0}, "period_seconds"),
    ("sharpe", {"span_seconds": -1.0}, "span_seconds"),
])
def test_annualised_ratio_rejects_bad_arguments(kind, kwargs, match):
    args = {"period_seconds": 60.0, "span_seconds": 3600.0} | kwargs
    with pytest.raises(ValueError, match=match):
        stats.annualised_ratio(kind, RETURNS, **args)


# ----------------------------------------------------------------------------- PSR and DSR

def test_the_papers_deflated_sharpe_example():
    # Bailey & López de Prado (2014), numerical example: annualised SR 2.5 over 1,250 daily
    # observations (250 a year), 100 trials with V = 0.5 annualised, skew -3, kurtosis 10:
    # SR0 = 0.1132 per day and DSR = 0.9004.
    sr0 = stats.expected_max_sharpe(100, 0.5 / 250)
    dsr = stats.deflated_sharpe_ratio(2.5 / math.sqrt(250), n_obs=1250, n_trials=100, skew=-3.0,
                                      kurtosis=10.0, trial_sharpe_variance=0.5 / 250)

    assert sr0 == pytest.approx(0.1132, abs=1e-4)
    assert dsr == pytest.approx(0.9004, abs=1e-4)


def test_expected_max_sharpe_by_hand():
    z = NormalDist().inv_cdf
    gamma = 0.5772156649015329

    assert stats.expected_max_sharpe(10, 0.04) == pytest.approx(
        0.2 * ((1 - gamma) * z(0.9) + gamma * z(1 - 1 / (10 * math.e))), rel=1e-12)
    assert stats.expected_max_sharpe(1, 0.04) == 0.0


def test_psr_by_hand_and_one_trial_is_the_plain_psr():
    # SR 0.1 over 101 normal observations: z = 0.1 * 10 / sqrt(1 + 2 / 4 * 0.01)
    psr = stats.probabilistic_sharpe_ratio(0.1, n_obs=101)

    assert psr == pytest.approx(NormalDist().cdf(1.0 / math.sqrt(1.005)), rel=1e-12)
    assert stats.deflated_sharpe_ratio(0.1, n_obs=101, n_trials=1) == psr
    assert stats.probabilistic_sharpe_ratio(0.0, n_obs=50) == pytest.approx(0.5)


def test_the_default_trial_variance_is_that_of_a_null_sharpe_estimate():
    assert stats.deflated_sharpe_ratio(0.1, n_obs=101, n_trials=20) == pytest.approx(
        stats.probabilistic_sharpe_ratio(0.1, n_obs=101, benchmark=stats.expected_max_sharpe(20, 1 / 100)))


@given(st.floats(-0.5, 0.5), st.integers(2, 5000), st.integers(1, 1000))
def test_more_trials_never_raise_the_dsr(sharpe, n_obs, n_trials):
    fewer = stats.deflated_sharpe_ratio(sharpe, n_obs=n_obs, n_trials=n_trials)
    more = stats.deflated_sharpe_ratio(sharpe, n_obs=n_obs, n_trials=n_trials + 1)

    assert 0.0 <= more <= fewer + 1e-12 <= 1.0 + 1e-12


@pytest.mark.parametrize("call, match", [
    (lambda: stats.probabilistic_sharpe_ratio(0.1, n_obs=1), "n_obs"),
    (lambda: stats.probabilistic_sharpe_ratio(2.0, n_obs=100, skew=5.0, kurtosis=1.0), "variance term"),
    (lambda: stats.probabilistic_sharpe_ratio(math.nan, n_obs=100), "sharpe"),
    (lambda: stats.deflated_sharpe_ratio(0.1, n_obs=100, n_trials=0), "n_trials"),
    (lambda: stats.expected_max_sharpe(5, -1.0), "variance"),
])
def test_sharpe_significance_rejects_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- classification scores

UNIFORM = np.full((4, 3), 1 / 3)
LABELS = [0, 1, 2, 0]


def test_uniform_probabilities_score_ln_k_and_two_thirds():
    assert stats.log_loss(UNIFORM, LABELS) == pytest.approx(math.log(3))
    assert stats.brier_score(UNIFORM, LABELS) == pytest.approx((2 / 3) ** 2 + 2 * (1 / 3) ** 2)


def test_perfect_and_confidently_wrong_predictions():
    perfect = np.eye(3)[LABELS]
    wrong = np.eye(3)[[1, 2, 0, 1]]

    assert stats.log_loss(perfect, LABELS) == pytest.approx(0.0, abs=1e-9)
    assert stats.brier_score(perfect, LABELS) == 0.0
    assert stats.log_loss(wrong, LABELS) == pytest.approx(-math.log(1e-12))
    assert stats.brier_score(wrong, LABELS) == 2.0


@pytest.mark.parametrize("probs, labels, match", [
    (np.array([[0.5, 0.6, 0.0]]), [0], "sum to 1"),
    (np.array([[1.0, 0.0, 0.0]]), [3], r"\[0, 3\)"),
    (np.array([[1.0, 0.0, 0.0]]), [0.5], "integer"),
    (np.array([0.5, 0.5]), [0], "shape"),
    (np.array([[1.5, -0.5, 0.0]]), [0], r"\[0, 1\]"),
    (UNIFORM, [0, 1], "rows"),
])
def test_scores_reject_bad_probabilities_and_labels(probs, labels, match):
    with pytest.raises(ValueError, match=match):
        stats.log_loss(probs, labels)


def test_priors_are_laplace_smoothed_frequencies():
    assert stats.prior_probs([0, 0, 1]) == pytest.approx([3 / 6, 2 / 6, 1 / 6])
    assert stats.prior_probs([0, 0, 1], smoothing=0.0) == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert stats.prior_probs([], n_classes=4) == pytest.approx([0.25] * 4)
    with pytest.raises(ValueError, match="undefined"):
        stats.prior_probs([], smoothing=0.0)


def test_confusion_matrix_rows_are_true_classes():
    assert stats.confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 2, 0]) == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    with pytest.raises(ValueError, match="same length"):
        stats.confusion_matrix([0, 1], [0])


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), max_size=40))
def test_the_confusion_diagonal_is_the_accuracy(pairs):
    labels, preds = [p[0] for p in pairs], [p[1] for p in pairs]

    cm = np.array(stats.confusion_matrix(labels, preds))
    acc = stats.accuracy_vs_majority(labels, preds)

    assert cm.sum() == len(pairs) == acc["n"]
    if pairs:
        assert np.trace(cm) / len(pairs) == pytest.approx(acc["accuracy"])
        assert acc["majority_rate"] == pytest.approx(cm.sum(axis=1).max() / len(pairs))


def test_reliability_curve_bins_every_class_probability():
    probs = np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])

    curve = stats.reliability_curve(probs, [0, 2], n_bins=4)

    assert curve == [
        {"bin": 0.125, "predicted": pytest.approx(0.15), "observed": 0.0, "count": 2},
        {"bin": 0.375, "predicted": pytest.approx(0.25), "observed": 0.0, "count": 2},
        {"bin": 0.625, "predicted": pytest.approx(0.6), "observed": 1.0, "count": 2},
    ]  # the top bin [0.75, 1] is empty and left out
    assert stats.reliability_curve(np.eye(3)[LABELS], LABELS, n_bins=10)[-1] == {
        "bin": 0.95, "predicted": 1.0, "observed": 1.0, "count": 4}


def test_accuracy_vs_majority_known_values():
    assert stats.accuracy_vs_majority([0, 0, 0, 1, 2], [0, 1, 0, 1, 1]) == {
        "accuracy": 0.6, "majority_rate": 0.6, "n": 5}
    assert stats.accuracy_vs_majority([], []) == {"accuracy": None, "majority_rate": None, "n": 0}
    with pytest.raises(ValueError, match="labels"):
        stats.accuracy_vs_majority([-1], [0])
