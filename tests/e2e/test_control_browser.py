"""The control panel in a real browser: the margin slider changes the engine's next decision,
control actions show up live in the audit log, and a viewer can neither press nor force the kill switch."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from apps.pipeline import control
from apps.trading.models import TradingAccount
from tests.e2e.conftest import PASSWORD, UserFactory, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NEW_MARGIN_BPS = 7.5


def _sign_in(page, base_url: str, user) -> None:
    page.goto(base_url + "/")
    page.wait_for_url("**/accounts/login/?next=/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")
    page.wait_for_selector("#conn.conn--live")


def _in_thread(fn, *args):
    """Run a database read off this thread: Playwright's event loop runs here, and Django refuses
    synchronous queries on a thread with a running loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


def _decision_settings(after_ms: int | None = None, before_ms: int | None = None) -> list[tuple[int, float]]:
    """(ts ms, settings.margin_bps) of the stored decisions in (after_ms, before_ms], oldest first."""
    from django.db import connection

    from apps.market.convert import ms_to_datetime
    from apps.trading.models import Decision

    try:
        rows = Decision.objects.order_by("ts_event")
        if after_ms is not None:
            rows = rows.filter(ts_event__gt=ms_to_datetime(after_ms))
        if before_ms is not None:
            rows = rows.filter(ts_event__lte=ms_to_datetime(before_ms))
        return [(int(d.ts_event.timestamp() * 1000), d.inputs["settings"]["margin_bps"]) for d in rows]
    finally:
        connection.close()


def _no_overflow(page, width: int, height: int) -> None:
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(400)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width


def test_the_margin_slider_changes_the_next_decision_and_is_audited_live(
        pipeline, staff_account, settings, page, live_server_url, artifacts):
    settings.GOGO_MIN_COMPLETENESS = 0.0  # decide from the first second: the gate is tested elsewhere
    _sign_in(page, live_server_url, staff_account.owner)
    page.select_option("#session-speed-select", "5")
    page.click("[data-action=start]")
    page.wait_for_function("() => +document.getElementById('dashboard').dataset.ticks >= 3", timeout=60_000)
    counts = page.evaluate("""() => ({candles: document.getElementById('chart-candles').data[0].x.length,
                                      columns: document.getElementById('chart-heatmap').data[0].x.length})""")
    assert counts["candles"] >= 1 and counts["columns"] >= 1  # the chart and the heatmap follow the session

    page.goto(live_server_url + "/control/")
    page.wait_for_selector("#conn.conn--live")
    page.wait_for_function("() => document.querySelector('#last-decision [data-field=decision]').textContent !== '—'",
                           timeout=60_000)
    before_ts = control.session_state()["ts"]
    slider = page.locator("form.thresholds input[name=margin_bps]").first
    assert float(slider.input_value()) == 2.0

    slider.fill(str(NEW_MARGIN_BPS))
    page.wait_for_function(
        "() => document.getElementById('control-message').textContent.startsWith('Applied: act above 7.5 bps')")
    applied_ts = control.session_state()["ts"]
    # The decision of ts + 1 s may have read the settings before the change; the one after cannot.
    first_after = applied_ts + 2000
    assert wait_until(lambda: _in_thread(_decision_settings, first_after - 1), timeout=60)

    before = _in_thread(_decision_settings, None, before_ts)
    after = _in_thread(_decision_settings, first_after - 1)
    assert before and {b for _, b in before} == {2.0}
    assert after[0][1] == NEW_MARGIN_BPS
    page.wait_for_selector("#audit tr:has-text('orchestrator.update')")
    assert staff_account.owner.username in page.inner_text("#audit tr:first-child")
    page.screenshot(path=str(artifacts / "control-1280x800.png"), full_page=True)

    _no_overflow(page, 390, 844)
    page.screenshot(path=str(artifacts / "control-390x844.png"), full_page=True)
    assert page.problems == []


@pytest.fixture
def viewer_account(transactional_db) -> TradingAccount:
    """A paper account of a user in no role group (a viewer)."""
    return TradingAccount.objects.create(owner=UserFactory(is_staff=False), name="paper")


def test_a_viewer_cannot_press_or_force_the_kill_switch(viewer_account, page, live_server_url, artifacts):
    _sign_in(page, live_server_url, viewer_account.owner)
    page.goto(live_server_url + "/control/")
    page.wait_for_selector("#conn.conn--live")

    kill = page.locator(f"#accounts [data-control=kill][data-account='{viewer_account.pk}']")
    assert kill.is_disabled()
    assert "Read-only" in page.inner_text("#readonly-note")
    assert all(s.is_disabled() for s in page.locator("input[type=range]").all())
    page.screenshot(path=str(artifacts / "control-viewer-1280x800.png"), full_page=True)

    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    forced = page.request.post(live_server_url + "/control/kill-switch/", headers={"X-CSRFToken": token},
                               data={"account": viewer_account.pk, "on": True})
    old_form = page.request.post(live_server_url + "/dashboard/risk/kill-switch/", headers={"X-CSRFToken": token},
                                 form={"account": str(viewer_account.pk), "on": "1"})

    assert forced.status == 403 and "trader role" in forced.json()["error"]
    assert old_form.status == 403
    assert not _in_thread(_kill_switch_on, viewer_account.pk)
    _no_overflow(page, 390, 844)
    page.screenshot(path=str(artifacts / "control-viewer-390x844.png"), full_page=True)
    assert page.problems == []


def _kill_switch_on(account_pk: int) -> bool:
    from django.db import connection

    from apps.risk.models import RiskState

    try:
        return RiskState.objects.filter(account_id=account_pk, kill_switch=True).exists()
    finally:
        connection.close()
