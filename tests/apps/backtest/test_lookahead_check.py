"""The look-ahead check: the pipeline passes; a deliberately leaky feature is caught."""
import io

import numpy as np
import pytest
from django.core.management import call_command

from apps.backtest.lookahead import lookahead_check

pytestmark = pytest.mark.django_db


def peek_at_the_next_close(inputs, next_second):
    """Test-only leak: the newest 1 s and 1 m closes replaced by the *next* second's close (when known)."""
    candle = next_second.candles.get(inputs.symbol) if next_second is not None else None
    if candle is not None:
        for name in ("primary_1s", "primary_1m"):
            rows = np.array(inputs.components[name], copy=True)
            rows[-1, 3] = candle.close * 1.01
            inputs.components[name] = rows
    return inputs


def test_the_pipeline_makes_no_decision_that_depends_on_later_data(window):
    start, end = window
    result = lookahead_check(samples=2, seed=1, start=start, end=end)
    assert result["decisions"] >= 70 and len(result["cuts"]) == 2
    assert all(c["compared"] > 0 for c in result["cuts"])
    assert result["passed"] and result["changed_decisions"] == 0


def test_a_feature_that_peeks_at_the_next_second_is_caught(window):
    start, end = window
    result = lookahead_check(samples=1, seed=1, start=start, end=end, input_hook=peek_at_the_next_close)
    assert not result["passed"]
    cut = result["cuts"][0]
    # At the cut the truncated run has no next second: its decision differs from the full run's.
    assert cut["cut_ms"] in [c["ts"] for c in cut["changes"]]


def test_the_command_reports_a_pass(window):
    _, end = window
    out = io.StringIO()
    call_command("lookahead_check", "--samples", "1", "--end", end.isoformat(), stdout=out, stderr=io.StringIO())
    assert "lookahead_check PASSED: no decision changed over 1 truncation(s)" in out.getvalue()
