"""The fast path (chunked replay, batch inference, buffered writes) against the per-second engine."""
import numpy as np
import pytest

from apps.backtest.services import FAST, PER_SECOND, backtest_run
from apps.trading.models import Decision, Order, OrderEvent

pytestmark = pytest.mark.django_db


def decisions_of(run):
    return list(Decision.objects.filter(account=run.account).order_by("ts_event").values_list(
        "ts_event", "action", "reason", "filter", "threshold", "confidence", "inputs"))


def orders_of(run):
    return list(Order.objects.filter(account=run.account).order_by("ts_event", "client_order_id").values_list(
        "side", "purpose", "quantity", "status", "average_price", "filled_quantity", "reject_reason", "ts_event"))


def test_the_fast_path_gives_the_per_second_decisions_and_order_log(window):
    start, end = window
    slow = backtest_run(start=start, end=end, params={"path": PER_SECOND})
    fast = backtest_run(start=start, end=end, params={"path": FAST})

    assert fast.summary["path"] == FAST and slow.summary["path"] == PER_SECOND
    assert set(fast.summary["stage_seconds"]) == {"market", "inputs", "inference", "trading"}
    assert fast.order_log_sha256 == slow.order_log_sha256
    assert orders_of(fast) == orders_of(slow) and len(orders_of(fast)) >= 3
    assert OrderEvent.objects.filter(order__account=fast.account).count() == \
        OrderEvent.objects.filter(order__account=slow.account).count()
    assert fast.series == slow.series
    for key in ("strategy", "decisions", "skipped_seconds", "orders_by_status"):
        assert fast.summary[key] == slow.summary[key]
    a, b = decisions_of(fast), decisions_of(slow)
    assert len(a) == len(b) >= 70
    for row, row2 in zip(a, b, strict=True):
        assert row[:5] == row2[:5]  # ts, action, reason, filter, threshold
        # The transformer runs in batches there: its float32 products may round differently. The
        # confidence column holds the edge in bps (tests/apps/trading/edges.py: 100 bps per unit of
        # probability), so the probabilities' 1e-6 becomes 1e-4 bps.
        assert row[5] == pytest.approx(row2[5], abs=1e-4)
        inputs, inputs2 = row[6], row2[6]
        mix, mix2 = inputs["mixture"], inputs2["mixture"]
        assert np.allclose([mix[k] for k in sorted(mix)], [mix2[k] for k in sorted(mix2)], atol=1e-6)
        assert inputs["settings"] == inputs2["settings"] and inputs["risk"] == inputs2["risk"]
    # Every model runs in batches there (ml.backtest.batch): its probabilities agree to ~1e-6.
    for (*_, inputs), (*_, inputs2) in zip(a, b, strict=True):
        assert set(inputs["models"]) == set(inputs2["models"])
        for name, probs in inputs["models"].items():
            assert probs == pytest.approx(inputs2["models"][name], abs=1e-6), name


def test_the_fast_path_stores_no_predictions_and_links_orders_to_their_decisions(window):
    from apps.predictions.models import Prediction

    start, end = window
    before = Prediction.objects.count()
    run = backtest_run(start=start, end=end)
    assert Prediction.objects.count() == before
    orders = Order.objects.filter(account=run.account, purpose="entry")
    assert orders.exists() and all(o.decision_id and o.decision.account_id == run.account_id for o in orders)
    assert all(o.decision.action == o.side for o in orders)


@pytest.mark.parametrize("max_seconds", [None, 30], ids=["in-memory", "streamed"])
def test_a_warm_market_tape_replaces_the_replay_and_gives_the_same_order_log(window, settings, tmp_path, monkeypatch,
                                                                             max_seconds):
    """Streamed: a day-long recording's tape does not fit MAX_SECONDS; it is written in segments and
    the next run streams it from the file (here with a 30 s memory limit and 16 s segments)."""
    from ml.backtest import market_tape
    from ml.market.session import MarketSession

    if max_seconds is not None:
        monkeypatch.setattr(market_tape, "MAX_SECONDS", max_seconds)
        monkeypatch.setattr(market_tape, "SEGMENT_SECONDS", 16)
    start, end = window
    settings.GOGO_VAR_DIR = tmp_path
    market_tape._MEMO.clear()
    cold = backtest_run(start=start, end=end)
    (path,) = (tmp_path / "cache").glob("tape-*.pickle")
    if max_seconds is not None:
        assert market_tape._MEMO == {} and market_tape._read_header(path)["seconds"] > max_seconds

    market_tape._MEMO.clear()  # as a new process: only the file is left

    def no_replay(self):
        raise AssertionError("the recordings were replayed")

    monkeypatch.setattr(MarketSession, "seconds", no_replay)
    warm = backtest_run(start=start, end=end)
    assert warm.order_log_sha256 == cold.order_log_sha256
    assert orders_of(warm) == orders_of(cold) and warm.series == cold.series
    for key in ("strategy", "decisions", "skipped_seconds", "orders_by_status", "engine"):
        assert warm.summary[key] == cold.summary[key]
    assert [row[:6] for row in decisions_of(warm)] == [row[:6] for row in decisions_of(cold)]
