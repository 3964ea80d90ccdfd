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
    assert rows[0].startswith("fold,start,end,days,who") and len(rows) == 1 + 2 * (1 + 1 + 4)
    assert trials_on_span(report["params"]["start_ms"], report["params"]["end_ms"]) == 1


def test_bad_walk_forward_parameters_are_refused_naming_the_field():
    with pytest.raises(BacktestError, match="folds"):
        backtest_create(source="walk_forward", params={"folds": 0})
    with pytest.raises(BacktestError, match="model"):
        backtest_create(source="walk_forward", params={"model": "lstm"})
    with pytest.raises(BacktestError, match="epochs"):
        backtest_create(source="walk_forward", params={"epochs": 500})
