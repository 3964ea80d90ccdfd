"""Walk-forward runs: the command, the stored report, the page and the CSV."""
import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from apps.backtest.models import BacktestRun
from apps.backtest.services import BacktestError, backtest_create

pytestmark = pytest.mark.django_db


def test_the_command_runs_a_walk_forward_and_stores_it_and_the_page_and_csv_show_it(pipeline_ready, client, tmp_path):
    out, path = io.StringIO(), tmp_path / "wf.csv"
    call_command("backtest", "--walk-forward", "2", "--epochs", "1", "--window-days", "0.5", "--csv", str(path),
                 stdout=out, stderr=io.StringIO())
    run = BacktestRun.objects.get()
    wf = run.summary["walk_forward"]
    assert run.source == "walk_forward" and run.status == BacktestRun.Status.FINISHED
    assert len(wf["folds"]) == 2 and wf["params"]["folds"] == 2 and wf["model"] == "cnn"
    assert out.getvalue().strip().endswith(f"walk_forward_sha256: {run.summary['sha256']}")
    report = json.loads(out.getvalue()[:out.getvalue().rindex("}") + 1])
    assert report["walk_forward"]["aggregate"]["folds"] == 2
    rows = path.read_text().strip().split("\n")
    assert rows[0].startswith("fold,train_start_ms") and len(rows) == 3

    client.force_login(get_user_model().objects.create_user(username="viewer", password="pw-12345678"))
    body = client.get(f"/backtests/{run.pk}/").content.decode()
    assert "Walk-forward" in body and 'id="chart-walk-forward"' in body
    assert f"{wf['folds'][1]['test'][0]}" in body


def test_bad_walk_forward_parameters_are_refused_naming_the_field(pipeline_ready):
    with pytest.raises(BacktestError, match="folds"):
        backtest_create(source="walk_forward", params={"folds": 0})
    with pytest.raises(BacktestError, match="model"):
        backtest_create(source="walk_forward", params={"model": "transformer"})
