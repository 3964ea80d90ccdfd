import numpy as np
import pytest

from ml.models.output import ModelOutput
from ml.orchestrator import (
    AccuracyScorer,
    FilterParams,
    GatingParams,
    MarketConditions,
    decide,
    gating_weights,
    market_filter,
    mixture_output,
    realized_volatility,
)

BASE = {"buy_threshold": 0.4, "sell_threshold": 0.5, "now_ms": 100_000, "last_order_ms": None, "cooldown_ms": 30_000}


def _out(name, buy, sell):
    return ModelOutput.from_probs(model_name=name, model_version="1", probs=np.array([buy, sell, 1 - buy - sell]))


def test_it_buys_when_buy_confidence_reaches_the_threshold_even_if_hold_is_likelier():
    result = decide(probs={"BUY": 0.4, "SELL": 0.1, "HOLD": 0.5}, **BASE)
    assert (result.action, result.confidence, result.threshold) == ("BUY", 0.4, 0.4)


def test_it_holds_when_sell_confidence_is_below_the_sell_threshold():
    result = decide(probs={"BUY": 0.1, "SELL": 0.49, "HOLD": 0.41}, **BASE)
    assert result.action == "HOLD"
    assert result.reason == "SELL confidence 0.490 < 0.500"


def test_it_sells_on_the_likelier_side():
    assert decide(probs={"BUY": 0.3, "SELL": 0.6, "HOLD": 0.1}, **BASE).action == "SELL"


def test_it_holds_during_the_cooldown_after_an_order():
    result = decide(probs={"BUY": 0.9, "SELL": 0.05, "HOLD": 0.05}, **{**BASE, "last_order_ms": 90_000})
    assert result.action == "HOLD"
    assert result.reason == "cooldown: 20 s left"


def test_a_model_with_no_opinion_holds():
    assert decide(probs={"BUY": 1 / 3, "SELL": 1 / 3, "HOLD": 1 / 3}, **BASE).action == "HOLD"


def test_a_wide_spread_holds_a_confident_buy_and_names_the_filter():
    result = decide(probs={"BUY": 0.9, "SELL": 0.05, "HOLD": 0.05}, **BASE,
                    conditions=MarketConditions(spread_bps=3.0, volatility=1e-4, completeness=0.95),
                    filters=FilterParams(max_spread_bps=2.0, max_volatility=1e-3, min_completeness=0.9))
    assert (result.action, result.filter, result.reason) == ("HOLD", "spread", "filter: spread 3.00 bps > 2.00")


def test_volatility_and_completeness_filters_hold_in_that_order():
    f = FilterParams(max_volatility=1e-3, min_completeness=0.9)
    assert market_filter(MarketConditions(volatility=2e-3, completeness=0.5), f)[0] == "volatility"
    assert market_filter(MarketConditions(volatility=1e-4, completeness=0.5), f)[0] == "completeness"
    assert market_filter(MarketConditions(volatility=1e-4, completeness=0.95), f) is None
    assert market_filter(MarketConditions(), f) is None  # unknown conditions pass


def test_realized_volatility_is_the_std_of_log_returns():
    closes = [100.0, 101.0, 100.0, 102.0]
    r = np.diff(np.log(closes))
    assert realized_volatility(closes) == pytest.approx(np.std(r, ddof=1))
    assert realized_volatility([100.0, 101.0]) is None


def test_the_scorer_scores_calls_against_the_sign_of_the_return_after_the_horizon():
    scorer = AccuracyScorer(horizon_ms=60_000, window=10)
    scorer.record(ts_ms=0, price=100.0, outputs={"up": _out("up", 0.6, 0.1), "down": _out("down", 0.1, 0.6)})
    scorer.record(ts_ms=1_000, price=100.0, outputs={"up": _out("up", 0.6, 0.1)})
    assert scorer.observe(ts_ms=59_999, price=101.0) == 0  # not yet 60 s
    assert scorer.observe(ts_ms=60_000, price=101.0) == 2  # the first second's two calls
    assert scorer.accuracy("up") == (1.0, 1) and scorer.accuracy("down") == (0.0, 1)
    assert scorer.observe(ts_ms=61_000, price=100.0) == 0  # flat: dropped unscored
    assert scorer.accuracy("missing") == (None, 0)


def test_gating_falls_back_to_equal_weights_until_every_model_has_enough_scored_calls():
    params = GatingParams(min_scored=30)
    weights, how = gating_weights(["a", "b"], {"a": (0.9, 100), "b": (0.4, 29)}, params)
    assert how == "equal-fallback" and weights == {"a": 0.5, "b": 0.5}


def test_learned_gating_is_a_softmax_of_accuracy_with_a_floor():
    params = GatingParams(min_scored=30, temperature=0.1, floor=0.05)
    weights, how = gating_weights(["a", "b", "c"], {"a": (0.6, 50), "b": (0.5, 50), "c": (0.0, 50)}, params)
    z = np.exp(np.array([6.0, 5.0, 0.0]) - 6.0)
    w = np.maximum(z / z.sum(), 0.05)
    w /= w.sum()
    assert how == "learned"
    assert [weights[n] for n in "abc"] == pytest.approx(list(w))


def test_manual_weights_replace_the_learned_ones():
    weights, how = gating_weights(["a", "b"], {}, GatingParams(mode="manual", manual={"a": 3, "b": 1}))
    assert how == "manual" and weights == {"a": 0.75, "b": 0.25}


def test_the_mixture_is_the_weighted_sum_of_the_models_probabilities():
    out = mixture_output({"a": _out("a", 0.6, 0.2), "b": _out("b", 0.2, 0.6)}, {"a": 0.75, "b": 0.25})
    assert out.probs["BUY"] == pytest.approx(0.75 * 0.6 + 0.25 * 0.2)
    assert out.probs["SELL"] == pytest.approx(0.75 * 0.2 + 0.25 * 0.6)
    assert out.metadata["weights"] == {"a": 0.75, "b": 0.25}
