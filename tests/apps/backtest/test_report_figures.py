"""Figures and tables of a walk-forward scope, on the factory's result (no database)."""
import pytest

from apps.backtest import reports, reports_figures, reports_tables
from tests.apps.backtest.wf_factory import walk_forward_result


def test_a_model_without_trades_draws_a_flat_line_over_its_fold():
    wf = walk_forward_result()
    fold = wf["folds"][0]
    fold["models"]["cnn"].update(trades=0, equity=[], trades_table=[])
    trace = [t for t in reports_figures.equity_figure(wf, fold).data if t.name == "cnn"][0]
    assert list(trace.y) == [0.0, 0.0]
    assert [t.isoformat() for t in trace.x] == ["2024-06-09T00:00:00+00:00", "2024-06-17T00:00:00+00:00"]
    assert list(reports_tables.rows(wf, "equity"))[0]["agent"] != "cnn"  # the export keeps what was stored


def test_the_total_says_its_per_model_figures_are_kept_per_fold():
    wf = walk_forward_result()
    for m in wf["total"]["models"].values():
        for key in ("reliability", "confusion", "importance"):
            m.pop(key)
    wf["total"]["orchestrator"].pop("confusion")
    assert reports_figures.confusion_figure(wf, wf["total"]).layout.title.text.endswith("choose a fold")


def test_the_drawdown_is_measured_from_the_running_peak_starting_flat():
    assert reports.drawdown_bps([-5.0, 10.0, 4.0, 12.0, 0.0]) == [5.0, 0.0, 6.0, 0.0, 12.0]


def test_agreement_counts_entries_at_the_same_time_and_side():
    wf = walk_forward_result(folds=1)
    fold = wf["folds"][0]
    a, b = fold["models"]["cnn"]["trades_table"], fold["models"]["dqn"]["trades_table"]
    same = sum(1 for x, y in zip(a, b, strict=False) if x["side"] == y["side"])  # hourly entries line up by index
    assert reports.agreement(wf, fold, "cnn", "dqn") == pytest.approx(same / len(a))
    with pytest.raises(reports.ReportError, match="fold: run has no fold 9"):
        reports.scope(wf, 9)
