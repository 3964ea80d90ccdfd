import math

import numpy as np
import pytest

from ml.models.output import ModelOutput
from ml.orchestrator import (
    EdgeStats,
    FilterParams,
    GatingParams,
    MarketConditions,
    NetEdgeScorer,
    decide,
    gating_weights,
    market_filter,
    mixture_edge,
    mixture_output,
    model_call,
    model_edge,
    realized_volatility,
)

BASE = {"margin_bps": 2.0, "now_ms": 100_000, "last_order_ms": None, "cooldown_ms": 30_000}


def _out(name, buy=0.2, sell=0.2, edge=None, horizon_min=None, cost_bps=None):
    """A model output; ``edge`` (BUY bps, SELL bps) puts the contract's calibrated edge in its metadata."""
    metadata = {}
    if edge is not None:
        metadata["edge_bps"] = {"BUY": edge[0], "SELL": edge[1]}
    if horizon_min is not None:
        metadata["horizon_min"] = horizon_min
    if cost_bps is not None:
        metadata["cost_bps"] = cost_bps
    return ModelOutput.from_probs(model_name=name, model_version="1", probs=np.array([buy, sell, 1 - buy - sell]),
                                  metadata=metadata)


def test_it_buys_when_the_buy_edge_exceeds_the_margin_even_if_hold_is_likelier():
    result = decide(edge_bps={"BUY": 3.5, "SELL": -9.0}, **BASE)
    assert (result.action, result.edge_bps, result.margin_bps) == ("BUY", 3.5, 2.0)
    assert result.reason == "edge BUY +3.5 bps > margin 2.0 bps"
    assert (result.confidence, result.threshold) == (3.5, 2.0)  # what Decision.confidence / threshold store


def test_it_holds_below_the_margin_and_names_the_numbers():
    result = decide(edge_bps={"BUY": 0.8, "SELL": -5.2}, **BASE)
    assert result.action == "HOLD" and result.reason == "edge BUY +0.8 bps < margin 2.0 bps"
    assert decide(edge_bps={"BUY": 2.0, "SELL": -1.0}, **BASE).action == "HOLD"  # must exceed, not equal


def test_it_sells_on_the_better_side():
    result = decide(edge_bps={"BUY": -4.0, "SELL": 2.5}, **BASE)
    assert (result.action, result.edge_bps) == ("SELL", 2.5)


def test_a_negative_margin_acts_on_the_least_bad_side():
    assert decide(edge_bps={"BUY": -1.0, "SELL": -3.0}, **{**BASE, "margin_bps": -2.0}).action == "BUY"


def test_it_holds_without_an_edge_and_says_why():
    result = decide(edge_bps=None, **BASE, no_edge_reason="no model has weight (learned): cnn: weight 0")
    assert (result.action, result.edge_bps, result.confidence) == ("HOLD", None, 0.0)
    assert result.reason == "HOLD: no model has weight (learned): cnn: weight 0"


def test_it_holds_during_the_cooldown_after_an_order():
    result = decide(edge_bps={"BUY": 9.0, "SELL": -9.0}, **{**BASE, "last_order_ms": 90_000})
    assert result.action == "HOLD"
    assert result.reason == "cooldown: 20 s left"


def test_a_wide_spread_holds_a_strong_buy_and_names_the_filter():
    result = decide(edge_bps={"BUY": 9.0, "SELL": -9.0}, **BASE,
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


def test_a_model_edge_needs_both_sides_finite():
    assert model_edge(_out("a", edge=(1.5, -2.0))) == {"BUY": 1.5, "SELL": -2.0}
    assert model_edge(_out("a")) is None  # an old checkpoint
    assert model_edge(_out("a", edge=(float("nan"), 1.0))) is None
    assert model_call(_out("a", edge=(1.5, -2.0))) == "BUY"
    assert model_call(_out("a", edge=(-0.5, -2.0))) is None  # no side with a positive net edge
    assert model_call(_out("a", buy=0.1, sell=0.6)) == "SELL"  # old checkpoint: its probabilities' argmax


def test_the_scorer_scores_calls_net_of_cost_after_each_models_horizon():
    scorer = NetEdgeScorer(horizon_ms=60_000, window=10, cost_bps=20.0)
    outputs = {"long": _out("long", edge=(5.0, -5.0), horizon_min=2, cost_bps=10.0),
               "short": _out("short", edge=(-5.0, 5.0)),  # no horizon, no cost: the scorer's 60 s and 20 bps
               "flat": _out("flat", edge=(-1.0, -1.0))}  # makes no call
    scorer.record(ts_ms=0, price=100.0, outputs=outputs)
    assert scorer.observe(ts_ms=59_999, price=101.0) == 0
    assert scorer.observe(ts_ms=60_000, price=101.0) == 1  # short, at 60 s: -100 bps - 20 bps
    st = scorer.stats("short")
    assert (st.mean_bps, st.se_bps, st.n, st.win_rate) == (pytest.approx(-120.0), 0.0, 1, 0.0)
    assert scorer.observe(ts_ms=120_000, price=100.5) == 1  # long, at 120 s: +50 bps - 10 bps
    assert scorer.stats("long").mean_bps == pytest.approx(40.0)
    assert scorer.accuracy("long") == (1.0, 1) and scorer.accuracy("flat") == (None, 0)
    assert scorer.stats("flat") is None


def test_the_scorer_keeps_the_last_window_and_gives_the_standard_error():
    scorer = NetEdgeScorer(horizon_ms=1_000, window=3, cost_bps=0.0)
    for t, move in enumerate((10.0, 20.0, -10.0, 40.0)):  # bps moves; the first falls out of the window
        scorer.record(ts_ms=t * 2_000, price=100.0, outputs={"a": _out("a", edge=(1.0, 0.0))})
        scorer.observe(ts_ms=t * 2_000 + 1_000, price=100.0 * (1 + move / 1e4))
    st = scorer.stats("a")
    scores = np.array([20.0, -10.0, 40.0])
    assert st.n == 3 and st.mean_bps == pytest.approx(scores.mean())
    assert st.se_bps == pytest.approx(scores.std(ddof=1) / math.sqrt(3))
    assert scorer.payoff("a") == pytest.approx(30.0 / 10.0)


def _stats(mean, se, n):
    return EdgeStats(mean, se, n, 0.5)


def test_learned_weights_follow_measured_net_edge_above_one_standard_error():
    outputs = {n: _out(n, edge=(1.0, -1.0)) for n in ("a", "b", "c", "d")}
    stats = {"a": _stats(3.0, 1.0, 200), "b": _stats(1.0, 0.5, 200), "c": _stats(-3.1, 1.0, 120),
             "d": _stats(9.0, 1.0, 50)}
    weights, how, why = gating_weights(outputs, stats, GatingParams(min_scored=120))
    assert how == "learned"
    assert weights == pytest.approx({"a": 0.75, "b": 0.25, "c": 0.0, "d": 0.0})
    assert why["c"] == "c: weight 0 — net edge -3.1 bps ± 1.0 over 120 calls (mean − 1·SE ≤ 0)"
    assert why["d"] == "d: weight 0 — 50 scored calls < 120 needed"
    assert why["a"] == "a: net edge +3.0 bps ± 1.0 over 200 calls"
    # mean 1.0, SE 0.5: passes at z = 1, fails at z = 2
    weights, _, _ = gating_weights(outputs, stats, GatingParams(min_scored=120, z=2.0))
    assert weights["b"] == 0.0 and weights["a"] == 1.0


def test_an_old_checkpoint_gets_weight_zero_whatever_it_scored():
    outputs = {"cnn": _out("cnn", buy=0.0167, sell=0.0165), "dqn": _out("dqn", edge=(4.0, -4.0))}
    stats = {"cnn": _stats(50.0, 1.0, 500), "dqn": _stats(2.0, 0.5, 500)}
    weights, _, why = gating_weights(outputs, stats, GatingParams(min_scored=120))
    assert weights == {"cnn": 0.0, "dqn": 1.0}
    assert why["cnn"] == "cnn: weight 0 — no calibrated edge_bps (old checkpoint)"
    weights, how, _ = gating_weights(outputs, {}, GatingParams(mode="equal"))
    assert (weights, how) == ({"cnn": 0.0, "dqn": 1.0}, "equal")


def test_without_measured_edge_learned_holds_and_fallback_weights_calibrated_edges_equally():
    outputs = {"a": _out("a", edge=(3.0, -3.0)), "b": _out("b", edge=(1.0, -1.0)), "old": _out("old")}
    weights, how, _ = gating_weights(outputs, {}, GatingParams())
    assert how == "learned-none" and set(weights.values()) == {0.0}
    weights, how, why = gating_weights(outputs, {}, GatingParams(mode="fallback"))
    assert how == "fallback-equal" and weights == {"a": 0.5, "b": 0.5, "old": 0.0}
    assert why["a"].endswith("fallback: equal until a model has measured edge")


def test_manual_weights_replace_the_learned_ones():
    outputs = {"a": _out("a", edge=(1.0, 0.0)), "b": _out("b", edge=(1.0, 0.0))}
    weights, how, _ = gating_weights(outputs, {}, GatingParams(mode="manual", manual={"a": 3, "b": 1}))
    assert how == "manual" and weights == {"a": 0.75, "b": 0.25}
    with pytest.raises(ValueError, match="mode"):
        gating_weights(outputs, {}, GatingParams(mode="softmax"))


def test_the_mixture_edge_is_the_weighted_sum_over_the_models_with_weight():
    outputs = {"a": _out("a", edge=(4.0, -6.0)), "b": _out("b", edge=(-2.0, 1.0)), "old": _out("old")}
    edge = mixture_edge(outputs, {"a": 0.75, "b": 0.25, "old": 0.0})
    assert edge == pytest.approx({"BUY": 0.75 * 4.0 + 0.25 * -2.0, "SELL": 0.75 * -6.0 + 0.25 * 1.0})
    assert mixture_edge(outputs, {"a": 0.0, "b": 0.0, "old": 0.0}) is None


def test_the_always_hold_model_that_leans_buy_by_two_ten_thousandths_never_trades():
    """Measured on main: a model saying HOLD at 0.966 had P(BUY) 0.0167 > P(SELL) 0.0165 and bought."""
    outputs = {"hold": _out("hold", buy=0.0167, sell=0.0165, edge=(-19.8, -20.2))}  # net of a 20 bps round trip
    weights, _, _ = gating_weights(outputs, {}, GatingParams(mode="equal"))
    out = mixture_output(outputs, weights)
    result = decide(edge_bps=out.metadata["edge_bps"], **BASE)
    assert result.action == "HOLD" and result.reason == "edge BUY -19.8 bps < margin 2.0 bps"


def test_the_mixture_output_carries_probabilities_edges_and_weights():
    outputs = {"a": _out("a", 0.6, 0.2, edge=(4.0, -6.0), horizon_min=5, cost_bps=20.0),
               "b": _out("b", 0.2, 0.6, edge=(-2.0, 1.0), horizon_min=1, cost_bps=10.0)}
    out = mixture_output(outputs, {"a": 0.75, "b": 0.25})
    assert out.probs["BUY"] == pytest.approx(0.75 * 0.6 + 0.25 * 0.2)
    assert out.probs["SELL"] == pytest.approx(0.75 * 0.2 + 0.25 * 0.6)
    assert out.metadata["weights"] == {"a": 0.75, "b": 0.25}
    assert out.metadata["edge_bps"]["BUY"] == pytest.approx(2.5)
    assert out.metadata["horizon_min"] == pytest.approx(4.0) and out.metadata["cost_bps"] == pytest.approx(17.5)
    # every weight 0: the probabilities are shown equally mixed, and there is no edge to act on
    none = mixture_output(outputs, {"a": 0.0, "b": 0.0})
    assert none.probs["BUY"] == pytest.approx(0.4) and none.metadata["edge_bps"] is None


def test_the_running_statistics_equal_the_exact_ones_over_a_long_session():
    rng = np.random.default_rng(7)
    mids = 2500.0 * np.exp(np.cumsum(rng.normal(0.0, 3e-4, 3_000)))  # (T,) a random walk of 1 s mids
    scorer = NetEdgeScorer(horizon_ms=60_000, window=250, cost_bps=20.0)
    up = _out("up", edge=(1.0, -1.0))
    for t, mid in enumerate(mids):
        scorer.record(ts_ms=t * 1000, price=float(mid), outputs={"up": up})
        scorer.observe(ts_ms=t * 1000, price=float(mid))
    scores = 1e4 * (mids[60:] / mids[:-60] - 1.0) - 20.0  # every call scored 60 s later
    last = scores[-250:]
    st = scorer.stats("up")
    assert st.n == 250
    assert st.mean_bps == pytest.approx(last.mean(), abs=1e-9)
    assert st.se_bps == pytest.approx(last.std(ddof=1) / math.sqrt(250), rel=1e-9)
    assert st.win_rate == pytest.approx((last > 0).mean())
