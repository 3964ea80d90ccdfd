"""Walk-forward runs: the command's JSON, the stored report, the CSV and the bounds on parameters."""
import io
import json

import pytest
from django.core.management import call_command

from apps.backtest.models import BacktestRun
from apps.backtest.services import BacktestError, backtest_create
from apps.backtest.walk_forward import trials_on_span

pytestmark = pytest.mark.django_db


def test_the_command_ends_with_one_json_object_and_stores_the_run(tmp_path):
    out, path = io.StringIO(), tmp_path / "wf.csv"
    call_command("backtest", "--walk-forward", "2", "--start", "2025-07-17", "--end", "2025-07-19", "--model", "cnn",
                 "--epochs", "1", "--json", "--csv", str(path), stdout=out, stderr=io.StringIO())
    report = json.loads(out.getvalue())  # the whole output is the one object
    run = BacktestRun.objects.get()
    assert run.source == "walk_forward" and run.status == BacktestRun.Status.FINISHED and report["run"] == run.pk
    assert [f["fold"] for f in report["folds"]] == [1, 2] and set(report["folds"][0]["models"]) == {"cnn"}
    assert report["params"]["start"] == "2025-07-17T00:00:00Z" and report["params"]["trials"] == 1
    total = report["total"]
    assert {"models", "orchestrator", "baselines", "deflated_sharpe", "hit_rate_p_value", "costs_bps"} <= set(total)
    rows = path.read_text().strip().split("\n")
    per_fold = [len(f["models"]) + 1 + len(f["baselines"]) for f in report["folds"]]
    assert rows[0].startswith("fold,start,end,days,who") and len(rows) == 1 + sum(per_fold)
    assert "live_checkpoint" in report["folds"][0]["baselines"]  # the session's bootstrapped checkpoints
    assert trials_on_span(report["params"]["start_ms"], report["params"]["end_ms"]) == 1


def test_bad_walk_forward_parameters_are_refused_naming_the_field():
    with pytest.raises(BacktestError, match="folds"):
        backtest_create(source="walk_forward", params={"folds": 0})
    with pytest.raises(BacktestError, match="model"):
        backtest_create(source="walk_forward", params={"model": "lstm"})
    with pytest.raises(BacktestError, match="epochs"):
        backtest_create(source="walk_forward", params={"epochs": 500})


def test_a_search_stores_every_trial_saves_the_best_as_a_preset_and_counts_the_trials(settings, tmp_path):
    settings.GOGO_VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("backtest", "--walk-forward", "1", "--start", "2025-07-18", "--end", "2025-07-19", "--model", "cnn",
                 "--epochs", "1", "--search", "2", "--json", stdout=out, stderr=io.StringIO())
    report = json.loads(out.getvalue())
    run = BacktestRun.objects.get(pk=report["run"])
    assert run.summary["search_trials"] == 2 and len(run.summary["search"]["trials"]) == 2
    assert report["params"]["trials"] == 2  # the best of two: deflated over both
    preset = json.loads((tmp_path / "presets" / "walk_forward.json").read_text())
    assert preset["margin_bps"] == run.summary["search"]["best"]["params"]["margin_bps"]
    assert trials_on_span(report["params"]["start_ms"], report["params"]["end_ms"]) == 2
    again = backtest_create(source="walk_forward", params={"preset": "best"})
    assert again.params["margin_bps"] == preset["margin_bps"]
