"""Hypothesis: over generated decision and price sequences no limit is ever exceeded and the kill
switch always halts new orders within one cycle (exits still pass).

The main property draws a sequence of up to 25 cycles (price move, time step, a desired order) and
the cycle from which the kill switch is on (or never); the RiskManager the engine uses decides, and
approved orders fill at the cycle's price. 10,000 sequences, plus 500 + 500 for the gating weights
and the decision rule and 2,000 for the capacity (the largest order the limits accept),
derandomized so a run is reproducible.
"""
from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ml.models.output import ModelOutput
from ml.orchestrator import GATING_MODES, EdgeStats, GatingParams, decide, gating_weights, mixture_edge
from ml.risk.limits import MINUTE_MS, AccountRisk, RiskLimits, TradingState, capacity, check_order, is_reducing
from ml.risk.manager import RiskManager

EXAMPLES = 10_000
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
LIMITS = RiskLimits(max_position=1.0, max_order_notional=3_000.0, max_orders_per_minute=4, daily_loss_limit=200.0,
                    max_drawdown=0.05)
SIDES = ("BUY", "SELL", None)

# One cycle is packed into one integer (cheap to generate and still shrinkable):
# price return in bps [-300, 300], seconds to the next cycle [1, 30], side, quantity [0.01, 1.50] base units.
sequences = st.lists(st.integers(0, 601 * 30 * 3 * 150 - 1), min_size=1, max_size=25)


def _cycle(code: int) -> tuple[float, int, str | None, float]:
    code, bps = divmod(code, 601)
    code, dt = divmod(code, 30)
    hundredths, side = divmod(code, 3)
    return (bps - 300) / 10_000, dt + 1, SIDES[side], (hundredths % 150 + 1) / 100


def _run(seq, kill_from: int | None):
    """Simulate; returns one record per order tried:
    (index, state, side, qty, price, verdict, position before, ts, kill switch on, breached)."""
    rm = RiskManager(LIMITS, equity=10_000.0)
    price, cash, position, ts = 2_500.0, 10_000.0, 0.0, 1_723_161_600_000
    out = []
    for i, code in enumerate(seq):
        ret, dt, side, qty = _cycle(code)
        ts += dt * 1000
        price = max(1.0, price * (1 + ret))
        kill_on = kill_from is not None and i >= kill_from
        rm.cycle(now_ms=ts, equity=cash + position * price, position=position, price=price, kill_switch=kill_on)
        if side is None:
            continue
        breached = (rm.equity - rm.day_start_equity <= -LIMITS.daily_loss_limit
                    or (rm.peak_equity - rm.equity) / rm.peak_equity >= LIMITS.max_drawdown)
        before, state, tripped = position, rm.state, rm.breaker.tripped(ts)
        verdict = rm.check(side=side, quantity=qty, price=price, now_ms=ts)
        if verdict.approved:
            signed = qty if side == "BUY" else -qty
            position += signed
            cash -= signed * price
        out.append((i, state, side, qty, price, verdict, before, ts, kill_on, breached, tripped))
    return out


@SETTINGS
@given(sequences, st.one_of(st.none(), st.integers(0, 24)))
def test_no_limit_is_ever_exceeded_and_the_kill_switch_always_halts(seq, kill_from):
    records = _run(seq, kill_from)
    accepted = [r[7] for r in records if r[5].approved]
    for t in accepted:  # orders per minute
        assert sum(1 for u in accepted if t - MINUTE_MS < u <= t) <= LIMITS.max_orders_per_minute
    for _, state, side, qty, price, verdict, before, _, kill_on, breached, tripped in records:
        reducing = is_reducing(before, side, qty)
        if verdict.approved:
            assert qty * price <= LIMITS.max_order_notional
            after = before + (qty if side == "BUY" else -qty)
            assert abs(after) <= LIMITS.max_position + 1e-9 or reducing
        if kill_on:  # the kill switch halts this very cycle; exits still pass the state rule
            assert state == TradingState.HALTED
            assert reducing or not verdict.approved
            if reducing and not verdict.approved:
                assert verdict.rule in ("max_order_notional", "max_orders_per_minute")
        if breached:  # daily loss or drawdown: only exits, and the state says so
            assert reducing or not verdict.approved
            assert state == TradingState.REDUCING or kill_on or tripped
    # What the examples exercised (shown with --hypothesis-show-statistics).
    for name, hit in (("kill switch: exit approved", any(r[8] and r[5].approved for r in records)),
                      ("kill switch: new order refused", any(r[8] and r[5].rule == "state" for r in records)),
                      ("max_position refused", any(r[5].rule == "max_position" for r in records)),
                      ("per-minute limit refused", any(r[5].rule == "max_orders_per_minute" for r in records)),
                      ("daily loss / drawdown refused", any(r[5].rule in ("daily_loss", "max_drawdown", "state")
                                                            and not r[8] for r in records))):
        if hit:
            event(name)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.floats(-50, 50), st.floats(0, 20), st.integers(0, 300), st.booleans()), min_size=1, max_size=6),
       st.floats(0, 3), st.sampled_from(GATING_MODES))
def test_gating_weights_are_a_distribution_over_models_with_a_positive_lower_bound(rows, z, mode):
    names = [f"m{i}" for i in range(len(rows))]
    outputs = {n: _output(n, calibrated) for n, (_, _, _, calibrated) in zip(names, rows, strict=True)}
    stats = {n: EdgeStats(mean, se, count, 0.5) for n, (mean, se, count, _) in zip(names, rows, strict=True)}
    params = GatingParams(min_scored=30, z=z, mode=mode, manual={n: 1.0 for n in names})
    weights, how, why = gating_weights(outputs, stats, params)
    assert set(weights) == set(why) == set(names)
    total = sum(weights.values())
    assert total == 0 or abs(total - 1) < 1e-9
    for n, (mean, se, count, calibrated) in zip(names, rows, strict=True):
        if not calibrated:
            assert weights[n] == 0
        elif how == "learned" and weights[n] > 0:
            assert count >= 30 and mean - z * se > 0
    if total == 0:
        assert mixture_edge(outputs, weights) is None


def _output(name: str, calibrated: bool) -> ModelOutput:
    metadata = {"edge_bps": {"BUY": 1.0, "SELL": -1.0}} if calibrated else {}
    return ModelOutput.from_probs(model_name=name, model_version="1", probs=[0.3, 0.3, 0.4], metadata=metadata)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.floats(-50, 50), st.floats(-50, 50), st.floats(-10, 50), st.integers(0, 100_000), st.integers(0, 60_000))
def test_the_decision_never_acts_at_or_below_its_margin_or_inside_the_cooldown(b, s, margin, since, cooldown):
    result = decide(edge_bps={"BUY": b, "SELL": s}, margin_bps=margin, now_ms=1_000_000,
                    last_order_ms=1_000_000 - since, cooldown_ms=cooldown)
    if result.action != "HOLD":
        assert result.edge_bps > margin and since >= cooldown
        assert result.edge_bps == max(b, s) and result.action == ("BUY" if b >= s else "SELL")


@settings(max_examples=2_000, deadline=None, derandomize=True)
@given(st.floats(-2, 2), st.floats(5_000, 12_000), st.floats(0, 0.3), st.floats(-600, 100),
       st.sampled_from(list(TradingState)), st.integers(0, 5), st.sampled_from(["BUY", "SELL"]),
       st.floats(100, 5_000), st.floats(0.001, 1.0))
def test_any_order_within_the_capacity_passes_and_none_above_it(position, equity, dd, day_pnl, state, recent, side,
                                                                price, fraction):
    now = 1_723_161_600_000
    account = AccountRisk(position=position, equity=equity, peak_equity=equity / (1 - dd),
                          day_start_equity=equity - day_pnl, recent_orders_ms=tuple(now - 1_000 * i for i in range(recent)),
                          state=state)
    room = capacity(limits=LIMITS, account=account, side=side, price=price, now_ms=now)
    assert room.quantity >= 0
    if room.quantity * fraction > 1e-9:
        verdict = check_order(limits=LIMITS, account=account, side=side, quantity=room.quantity * fraction,
                              price=price, now_ms=now)
        assert verdict.approved, (room, verdict)
    above = check_order(limits=LIMITS, account=account, side=side, quantity=room.quantity + 1e-6, price=price, now_ms=now)
    assert not above.approved
    if room.quantity == 0:
        assert room.rule and room.reason
