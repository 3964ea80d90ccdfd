"""Backtest pages in Debian's chromium: the walk-forward evaluation lab (Dash) draws all its charts
and answers the fold selector, the replay report draws its charts with the markers' legend, and the
start form answers at once with a progress bar that runs to the finished report; no console error."""
from __future__ import annotations

import io

import pandas as pd
import pytest

from apps.backtest import reports_tables
from apps.backtest.models import BacktestRun
from tests.apps.backtest.wf_factory import walk_forward_result
from tests.e2e.conftest import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
GRAPHS = ("equity", "drawdown", "reliability", "confusion", "importance")


def _sign_in(page, base_url: str, username: str, next_path: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + next_path)


@pytest.fixture
def lab_run(transactional_db) -> BacktestRun:
    """A finished walk-forward whose dqn failed on fold 1 (rows exist before the browser starts:
    the page fixture's event loop forbids DB calls in the test body)."""
    return BacktestRun.objects.create(source="walk_forward", name="lab", status="finished", progress=1.0,
                                      summary={"walk_forward": walk_forward_result(error_model="dqn", error_fold=1)})


@pytest.fixture
def viewer_user(transactional_db):
    return UserFactory(username="eve-e2e")


@pytest.fixture
def staff_user(transactional_db):
    return UserFactory(username="sam-e2e", is_staff=True)


def test_the_evaluation_page_draws_every_chart_and_follows_the_fold(lab_run, viewer_user, page, live_server_url,
                                                                      artifacts):
    _sign_in(page, live_server_url, viewer_user.username, f"/backtests/{lab_run.pk}/")

    for name in GRAPHS:  # dcc.Graph draws a plotly div with its traces once the callback has answered
        page.wait_for_selector(f"#graph-{name} .js-plotly-plot .main-svg", state="attached")
    assert page.locator("#evaluation .js-plotly-plot").count() == len(GRAPHS)
    page.wait_for_function("() => document.querySelectorAll('#graph-equity .scatterlayer .trace').length === 8")
    assert page.locator(".wf-card").count() == 7
    assert "all 3 folds" in page.inner_text("#scope-note")
    assert page.locator("#trades tbody tr").count() == 3 * 8  # the orchestrator's trades in every fold

    page.click("#fold")
    page.get_by_text("fold 1", exact=True).click()
    page.wait_for_function("() => document.querySelector('#scope-note').textContent.includes('fold 1:')")
    page.wait_for_function("() => document.querySelectorAll('#graph-equity .scatterlayer .trace').length === 7")
    assert "training diverged (loss nan)" in page.inner_text("#metrics")
    page.screenshot(path=str(artifacts / "backtest-evaluation-1280x800.png"), full_page=True)
    assert page.problems == []

    # the export streams through the ASGI server (an async iterator there) and reads back whole
    download = page.request.get(f"{live_server_url}/backtests/{lab_run.pk}/export?table=trades&format=parquet")
    assert download.ok and download.headers["content-type"] == "application/vnd.apache.parquet"
    frame = pd.read_parquet(io.BytesIO(download.body()))
    assert len(frame) == len(list(reports_tables.rows(lab_run.summary["walk_forward"], "trades")))


def test_starting_a_run_shows_a_progress_bar_then_the_report(pipeline, staff_user, page, live_server_url, artifacts):
    _sign_in(page, live_server_url, staff_user.username, "/backtests/")
    page.select_option("#id_source", "walk_forward")
    assert page.is_visible("#id_folds")
    page.fill("#id_folds", "40")
    page.click("button[type=submit] >> text=Start backtest")
    assert "Ensure this value is less than or equal to 12" in page.inner_text("#folds-error")
    page.screenshot(path=str(artifacts / "backtest-form-1280x800.png"), full_page=True)
    assert page.problems == ["console error: Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    page.problems.clear()  # the refused form answers 400, which chromium logs; nothing else may

    page.select_option("#id_source", "candles")
    assert not page.is_visible("#id_folds")  # and its stale 40 is not sent
    page.fill("#id_start", "2024-08-08T23:00")
    page.fill("#id_end", "2024-08-08T23:02")
    page.click("button[type=submit] >> text=Start backtest")
    page.wait_for_url(f"{live_server_url}/backtests/*/")
    assert page.locator("#bt-progress").count() == 1
    page.wait_for_function("() => document.querySelector('#bt-status').textContent === 'finished'", timeout=120_000)
    page.wait_for_selector("#chart-equity.js-plotly-plot .main-svg", state="attached")  # Plotly.newPlot's own div
    page.wait_for_selector("#chart-drawdown.js-plotly-plot .main-svg", state="attached")
    assert "BUY filled" in page.inner_text(".bt-legend") and "per period" in page.inner_text("main")
    page.screenshot(path=str(artifacts / "backtest-replay-1280x800.png"), full_page=True)
    assert page.problems == []
