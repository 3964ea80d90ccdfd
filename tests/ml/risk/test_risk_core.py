import math

import numpy as np
import pytest

from ml.risk import metrics, sizing
from ml.risk.breakers import BreakerParams, CircuitBreaker
from ml.risk.limits import AccountRisk, RiskLimits, TradingState, check_order
from ml.risk.stops import StopRules, stop_hit, update_extreme


def test_drawdown_and_max_drawdown_of_an_equity_curve():
    eq = [100, 110, 99, 121, 108.9]
    np.testing.assert_allclose(metrics.drawdown_curve(eq), [0, 0, 0.1, 0, 0.1])
    assert metrics.max_drawdown(eq) == pytest.approx(0.1)


def test_historical_var_is_the_negated_empirical_quantile():
    r = [-0.05, -0.02, 0.0, 0.01, 0.03]
    # numpy linear quantile at 0.2 over 5 sorted values: position 0.8 -> -0.05 + 0.8 * 0.03 = -0.026
    assert metrics.var_historical(r, 0.8) == pytest.approx(0.026)


def test_parametric_var_is_mu_plus_z_sigma():
    r = [0.01, -0.02, 0.015, -0.005, 0.0]
    mu, sd = np.mean(r), np.std(r, ddof=1)
    assert metrics.var_parametric(r, 0.95) == pytest.approx(-(mu - 1.6448536269514722 * sd))


def test_sharpe_and_sortino_annualise_by_the_root_of_periods_per_year():
    r = [0.01, -0.005, 0.02, -0.01]
    p = metrics.periods_per_year(86_400)
    assert p == 365
    assert metrics.sharpe(r, p) == pytest.approx(np.mean(r) / np.std(r, ddof=1) * math.sqrt(365))
    downside = math.sqrt((0.005**2 + 0.01**2) / 4)
    assert metrics.sortino(r, p) == pytest.approx(np.mean(r) / downside * math.sqrt(365))
    assert metrics.summary([100, 101, 100.5], 1)["var_parametric"] is not None


def test_fixed_fraction_and_atr_and_kelly_sizes():
    assert sizing.fixed_fraction(equity=10_000, fraction=0.1, price=2_500) == pytest.approx(0.4)
    assert sizing.fixed_fraction(equity=10_000, fraction=0.5, price=2_500, max_notional=1_000) == pytest.approx(0.4)
    # TR = max(H-L, |H-Cprev|, |L-Cprev|): 2.5 (12-9.5), 3 (13-10), 2 (13-11); n=2:
    # first ATR (2.5 + 3) / 2 = 2.75, then Wilder (2.75 * 1 + 2) / 2 = 2.375
    a = sizing.atr([10, 12, 13, 13], [9, 10, 10, 11], [9.5, 11, 12, 12], n=2)
    assert a == pytest.approx(2.375)
    assert sizing.atr_size(equity=10_000, risk_fraction=0.01, atr_value=2.5, atr_multiple=2, price=2_500) == pytest.approx(20.0)
    assert sizing.kelly_fraction(win_rate=0.55, payoff=1.0, cap=0.25) == pytest.approx(0.10)
    assert sizing.kelly_fraction(win_rate=0.9, payoff=2.0, cap=0.25) == 0.25
    assert sizing.kelly_fraction(win_rate=0.3, payoff=1.0, cap=0.25) == 0.0


def test_stops_for_a_long_and_a_short():
    rules = StopRules(stop_loss=0.01, take_profit=0.02, trailing=0.005)
    assert stop_hit(position=1, entry=100, extreme=100, price=98.9, rules=rules) == "stop_loss"
    assert stop_hit(position=1, entry=100, extreme=102, price=102.1, rules=rules) == "take_profit"
    assert stop_hit(position=1, entry=100, extreme=101.5, price=100.9, rules=rules) == "trailing_stop"
    assert stop_hit(position=-1, entry=100, extreme=100, price=101.1, rules=rules) == "stop_loss"
    assert stop_hit(position=-1, entry=100, extreme=99, price=99.6, rules=rules) == "trailing_stop"
    assert stop_hit(position=0, entry=100, extreme=None, price=50, rules=rules) is None
    assert update_extreme(1, 101, 100) == 101 and update_extreme(-1, 99, 98) == 98


def test_the_limits_name_the_first_rule_that_fails():
    limits = RiskLimits(max_position=1, max_order_notional=1_000, max_orders_per_minute=2)
    acc = AccountRisk(recent_orders_ms=(59_000, 60_000))
    big = check_order(limits=limits, account=acc, side="BUY", quantity=1, price=2_000, now_ms=60_000)
    assert big.rule == "max_order_notional"
    assert check_order(limits=limits, account=acc, side="BUY", quantity=0.1, price=2_000, now_ms=60_000).rule \
        == "max_orders_per_minute"
    halted = AccountRisk(position=0.3, state=TradingState.HALTED)
    assert check_order(limits=limits, account=halted, side="BUY", quantity=0.1, price=2_000, now_ms=0).rule == "state"
    assert check_order(limits=limits, account=halted, side="SELL", quantity=0.3, price=2_000, now_ms=0).approved
    with pytest.raises(ValueError, match="side must be BUY or SELL"):
        check_order(limits=limits, account=acc, side="HOLD", quantity=1, price=1, now_ms=0)


def test_circuit_breakers_trip_on_an_extreme_move_and_on_venue_errors():
    b = CircuitBreaker(BreakerParams(max_move=0.05, max_errors=3, window_ms=60_000, cooldown_ms=10_000))
    assert b.on_price(0, 100) is None and b.on_price(30_000, 104) is None
    assert "+5.50%" in b.on_price(40_000, 105.5)
    assert b.tripped(49_999) and not b.tripped(50_000)
    assert b.on_error(100_000) is None and b.on_error(100_001) is None
    assert b.on_error(100_002).startswith("3 venue errors") and b.tripped(100_003)
