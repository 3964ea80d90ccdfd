"""The backtest pages: the evaluation lab of a walk-forward run (Dash), older stored shapes, the
comparison, and the start form that answers at once while the run goes on in the background."""
import json
import time

import pytest
from django.contrib.auth import get_user_model

from apps.backtest.models import BacktestRun
from tests.apps.backtest.wf_factory import legacy_walk_forward, walk_forward_result

DASH_UPDATE = "/django_plotly_dash/app/BacktestEvaluation/_dash-update-component"
SCOPE_OUTPUTS = ["scope-note.children", "cards.children", "metrics.children", "graph-equity.figure",
                 "graph-drawdown.figure", "graph-reliability.figure", "graph-confusion.figure", "graph-importance.figure"]


def wf_run(wf: dict, **kwargs) -> BacktestRun:
    return BacktestRun.objects.create(source=BacktestRun.Source.WALK_FORWARD, name="wf", status="finished", progress=1.0,
                                      summary={"walk_forward": wf}, **kwargs)


@pytest.fixture
def viewer(db, client):
    user = get_user_model().objects.create_user(username="viewer", password="pw-12345678")
    client.force_login(user)
    return user


def scope_update(client, run: BacktestRun, fold: str) -> dict:
    body = {"output": ".." + "...".join(SCOPE_OUTPUTS) + "..",
            "outputs": [{"id": o.split(".")[0], "property": o.split(".")[1]} for o in SCOPE_OUTPUTS],
            "inputs": [{"id": "fold", "property": "value", "value": fold}],
            "state": [{"id": "url", "property": "pathname", "value": f"/backtests/{run.pk}/"}],
            "changedPropIds": ["fold.value"]}
    return client.post(DASH_UPDATE, json.dumps(body), content_type="application/json")


def test_the_evaluation_page_embeds_the_dash_app_in_the_page(viewer, client):
    run = wf_run(walk_forward_result())
    body = client.get(f"/backtests/{run.pk}/").content.decode()
    assert 'id="evaluation"' in body and "django-plotly-dash-direct" in body and "_dash-renderer" in body
    assert "cnn, dqn, transformer" in body and "21.0 bps a round trip" in body
    for table in ("folds", "metrics", "trades", "equity"):
        assert f"export?table={table}&amp;format=parquet" in body


def test_a_hyper_parameter_search_lists_its_trials_with_the_best_marked(viewer, client):
    search = {"trials": [{"number": 0, "params": {"margin_bps": 2.0, "epochs": 3}, "objective": -1.25,
                          "orchestrator_trades": 4, "orchestrator_net_pnl_bps": -12.5, "seconds": 61.0},
                         {"number": 1, "params": {"margin_bps": 8.0, "epochs": 5}, "objective": 1234.5,
                          "orchestrator_trades": 2, "orchestrator_net_pnl_bps": 3.5, "seconds": 70.0}],
              "best": {"number": 1, "objective": 1234.5, "params": {}}, "preset": {"margin_bps": 8.0},
              "n_trials": 2, "seconds": 131.0, "trials_per_hour": 55.0}
    run = BacktestRun.objects.create(source="walk_forward", status="finished",
                                     summary={"walk_forward": walk_forward_result(), "search": search, "search_trials": 2})
    body = client.get(f"/backtests/{run.pk}/").content.decode()
    assert "Hyper-parameter search · 2 trials" in body and "1,234.50" in body
    assert '<tr class="pos"><td>1</td>' in body and "epochs 5 · margin_bps 8.0" in body  # jsonb sorts the keys


def test_a_fold_shows_every_agent_and_chart_and_a_failed_model_says_why(viewer, client):
    wf = walk_forward_result(error_model="dqn", error_fold=2)
    run = wf_run(wf)
    response = scope_update(client, run, "2")
    assert response.status_code == 200
    out = response.json()["response"]
    equity = out["graph-equity"]["figure"]["data"]
    names = [t["name"] for t in equity]
    # dqn failed on fold 2: no curve; the others, the orchestrator and every baseline have one
    assert names == ["cnn", "transformer", "orchestrator", "always_hold (baseline)", "buy_and_hold (baseline)",
                     "momentum (baseline)", "random (baseline)"]
    cnn = wf["folds"][1]["models"]["cnn"]
    assert equity[0]["y"] == [p[1] for p in cnn["equity"]]
    drawdown = out["graph-drawdown"]["figure"]["data"][0]
    peak, expected = 0.0, []
    for _, v in cnn["equity"]:
        peak = max(peak, v)
        expected.append(-(peak - v))
    assert drawdown["y"] == pytest.approx(expected) and drawdown["customdata"] == pytest.approx([-e / 100 for e in expected])
    assert len(out["graph-confusion"]["figure"]["data"]) == 3  # cnn, transformer, orchestrator
    assert [t["name"] for t in out["graph-reliability"]["figure"]["data"]][0] == "perfectly calibrated"
    assert {t["name"] for t in out["graph-importance"]["figure"]["data"]} == {"cnn", "transformer", "orchestrator"}
    text = json.dumps(out["metrics"], ensure_ascii=False) + json.dumps(out["cards"], ensure_ascii=False)
    assert "training diverged (loss nan)" in text and "Deflated Sharpe" in text and "Hit-rate p-value" in text
    o = wf["folds"][1]["orchestrator"]
    assert f"{o['net_pnl_bps']:+,.1f} bps" in text and "fees 40.0 · spread 2.0 · slippage 0.0 bps" in text
    assert "fold 2: 2024-06-17" in out["scope-note"]["children"]


def test_the_callbacks_answer_nobody_signed_out(db, client):
    run = wf_run(walk_forward_result())
    assert scope_update(client, run, "1").status_code == 204  # PreventUpdate: no data leaves


def test_an_older_walk_forward_shows_its_folds_with_a_note(viewer, client):
    run = wf_run(legacy_walk_forward())
    response = client.get(f"/backtests/{run.pk}/")
    body = response.content.decode()
    assert response.status_code == 200 and "older walk-forward format" in body
    assert "django-plotly-dash-direct" not in body and "-8.0" not in body and "-4.0" in body


def test_the_comparison_shows_each_models_pnl_per_fold_and_their_agreement(viewer, client):
    a, b = wf_run(walk_forward_result(seed=1)), wf_run(walk_forward_result(seed=2, folds=2))
    body = client.get("/backtests/compare/", {"runs": [a.pk, b.pk]}).content.decode()
    assert 'id="chart-compare"' in body and "Agreement between models" in body
    figure = json.loads(body.split('<script id="compare-figure" type="application/json">')[1].split("</script>")[0])
    names = {t["name"] for t in figure["data"]}
    assert f"#{a.pk} cnn" in names and f"#{b.pk} orchestrator" in names
    pnl = walk_forward_result(seed=2, folds=2)["folds"][1]["models"]["dqn"]["net_pnl_bps"]
    assert [t for t in figure["data"] if t["name"] == f"#{b.pk} dqn"][0]["y"][1] == pytest.approx(pnl)
    assert "No trades tables to compare." not in body  # hourly entries: models share entry times
    only_one = client.get("/backtests/compare/", {"runs": [a.pk]}).content.decode()
    assert "Choose at least two" in only_one and 'id="chart-compare"' not in only_one


@pytest.mark.parametrize("field, value", [("folds", "0"), ("folds", "13"), ("epochs", "21"), ("window_days", "31")])
def test_the_form_bounds_the_walk_forward(db, client, field, value):
    client.force_login(get_user_model().objects.create_user(username="boss", password="pw-12345678", is_staff=True))
    response = client.post("/backtests/", {"source": "walk_forward", field: value})
    assert response.status_code == 400 and f'id="{field}-error"' in response.content.decode()
    assert not BacktestRun.objects.exists()


def test_walk_forward_bounds_do_not_apply_to_other_sources(db, client, django_capture_on_commit_callbacks):
    client.force_login(get_user_model().objects.create_user(username="boss", password="pw-12345678", is_staff=True))
    with django_capture_on_commit_callbacks(execute=False):  # not run here: the form is what is tested
        response = client.post("/backtests/", {"source": "candles", "folds": "40", "start": "2024-08-08T23:00"})
    run = BacktestRun.objects.get()
    assert response.status_code == 302 and run.params == {} and run.source == "candles"


def test_the_form_refuses_an_end_before_the_start_and_bad_fields(db, client):
    client.force_login(get_user_model().objects.create_user(username="boss", password="pw-12345678", is_staff=True))
    assert client.post("/backtests/", {"source": "bogus"}).status_code == 400
    assert client.post("/backtests/", {"source": "candles", "end": "yesterday"}).status_code == 400
    response = client.post("/backtests/", {"source": "candles", "start": "2024-08-08T23:02", "end": "2024-08-08T23:00"})
    assert response.status_code == 400 and "must be after the start" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_starting_a_backtest_answers_at_once_and_its_progress_reaches_finished(pipeline_ready, client):
    """Embedded (no broker): the run goes to a thread; the page answers before it ends and the
    progress endpoint the page polls reports it running, then finished."""
    staff = get_user_model().objects.create_user(username="boss", password="pw-12345678", is_staff=True)
    client.force_login(staff)
    viewer = get_user_model().objects.create_user(username="viewer", password="pw-12345678")
    t0 = time.monotonic()
    response = client.post("/backtests/", {"source": "candles", "start": "2024-08-08T23:00", "end": "2024-08-08T23:02"})
    answered = time.monotonic() - t0
    run = BacktestRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/backtests/{run.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert 'id="bt-progress"' in page and run.created_by == staff
    seen = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = client.get(f"/backtests/{run.pk}/progress").json()
        seen.add(state["status"])
        if state["status"] in ("finished", "failed"):
            break
        time.sleep(0.2)
    assert state["status"] == "finished" and state["progress"] == 1.0, state
    assert seen & {"pending", "running"}, "the POST waited for the run"
    assert answered < 5
    client.force_login(viewer)
    assert client.post("/backtests/", {"source": "orderbook"}).status_code == 403
    client.logout()
    assert client.get("/backtests/").status_code == 302  # login required
