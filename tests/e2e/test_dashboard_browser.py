"""The dashboard in a real browser, fed by the real replay engine running on the server's loop."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from apps.pipeline import control
from apps.pipeline.runner import GROUP
from tests.e2e.conftest import PASSWORD, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

COUNTS = """() => {
  const trace = (id, i) => (document.getElementById(id).data || [])[i] || {x: []};
  const candles = trace('chart-candles', 0), heatmap = trace('chart-heatmap', 0);
  return {
    ticks: +document.getElementById('dashboard').dataset.ticks,
    candles: candles.x.length, lastCandle: candles.x.length ? candles.x[candles.x.length - 1] : null,
    columns: heatmap.x.length, rows: (heatmap.y || []).length,
    buys: trace('chart-candles', 1).x.length,
  };
}"""


def _sign_in(page, base_url: str, user) -> None:
    page.goto(base_url + "/")
    page.wait_for_url("**/accounts/login/?next=/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")
    page.wait_for_selector("#conn.conn--live")


def test_the_dashboard_follows_a_replay_started_from_the_page(pipeline, staff_account, page, live_server_url, artifacts):
    _sign_in(page, live_server_url, staff_account.owner)
    before = page.evaluate(COUNTS)

    page.select_option("#session-speed-select", "max")
    page.click("[data-action=start]")
    # 200 s of exchange time: past 180 s the 1 s components reach 0.6 and the 0.8 gate opens.
    page.wait_for_function("() => +document.getElementById('dashboard').dataset.ticks >= 200", timeout=90_000)
    page.wait_for_timeout(600)  # let the coalesced redraw catch up
    after = page.evaluate(COUNTS)

    assert after["candles"] > before["candles"]
    assert after["columns"] > before["columns"]
    assert after["rows"] >= 41  # 2N + 1 buckets, more once the mid has moved
    assert page.inner_text("#session-state") == "running"
    assert page.inner_text("#model-status") == "predicted"
    assert page.inner_text("#model-action") in ("BUY", "SELL", "HOLD")
    assert "Overall" in page.inner_text("#completeness")
    assert "ETHUSDT (traded)" in page.inner_text("#gaps")
    assert f"Account {staff_account.pk}" in page.inner_text("#positions")
    page.screenshot(path=str(artifacts / "dashboard-1280x800.png"))

    page.click("[data-action=stop]")
    page.wait_for_function("() => document.getElementById('session-message').textContent === 'Stop requested.'")
    assert wait_until(lambda: control.session_state().get("state") == "finished", timeout=20)

    # A BUY with an order, in the engine's shape, is marked on the candle chart.
    last = page.evaluate("() => { const s = window.gogoDashboard.state; return [s.lastTs, s.candles.at(-1).c]; }")
    ts, price = last[0] + 1000, round(last[1], 2)
    _publish(_buy_tick(ts, price, staff_account.pk))
    page.wait_for_function(f"() => ({COUNTS})().buys >= 1")
    marker = page.evaluate("() => document.getElementById('chart-candles').data[1]")
    assert marker["x"] == [ts]
    assert marker["y"][0] < price - 0.1  # under the candle's low

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(400)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # one column, no sideways scroll
    page.screenshot(path=str(artifacts / "dashboard-390x844.png"), full_page=True)
    assert page.problems == []


def test_only_staff_see_the_session_controls(viewer, page, live_server_url):
    _sign_in(page, live_server_url, viewer)

    assert page.locator("[data-action=start]").count() == 0
    assert "Only staff users" in page.inner_text("body")
    assert page.problems == []


def test_a_wrong_password_is_refused_with_a_message(viewer, page, live_server_url):
    page.goto(live_server_url + "/accounts/login/")
    page.fill("#id_username", viewer.username)
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")

    assert "correct username and password" in page.inner_text("[role=alert]")
    assert page.url.endswith("/accounts/login/")
    assert page.problems == []


def _publish(update: dict) -> None:
    """group_send as the session's publisher does, from a thread of its own: this one holds
    Playwright's event loop, where async_to_sync refuses to run."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(async_to_sync(get_channel_layer().group_send), GROUP, {"type": "tick", "payload": update}).result()


def _buy_tick(ts: int, price: float, account_pk: int) -> dict:
    """One exchange second as ``Dashboard.tick`` (apps.pipeline.stages.dashboard) builds it, with a filled BUY for the account."""
    width, n = 1.0, 20
    center = float(int(price // width) * width)
    bid = [40_000.0] * (n + 1) + [0.0] * n
    ask = [0.0] * (n + 1) + [40_000.0] * n
    return {
        "type": "tick", "ts": ts, "symbol": "ETHUSDT",
        "instruments": {
            "ETHUSDT": {
                "candle": {"t": ts, "o": price, "h": price + 0.3, "l": price - 0.1, "c": price + 0.2, "v": 1.25},
                "frame": {"ts": ts, "mid": price + 0.2, "first": center - n * width, "width": width, "bid": bid,
                          "ask": ask, "imbalance": [1.0] * (n + 1) + [-1.0] * n, "imbalance_5": 0.0909,
                          "ma": {"1s": 0.0909, "5s": 0.05, "15s": 0.02, "60s": 0.01}},
                "gaps": 0,
            },
            "BTCUSDT": {"candle": None, "frame": None, "gaps": 0},
        },
        "prediction": {"status": "predicted", "action": "BUY", "confidence": 0.71, "reason": "",
                       "probs": {"BUY": 0.71, "SELL": 0.09, "HOLD": 0.2}},
        "completeness": {"primary_1s": 1.0, "primary_1m": 1.0, "primary_1h": 1.0, "primary_1d": 1.0,
                         "reference_1s": 1.0, "cob": 1.0, "overall": 1.0},
        "decisions": [{"account": account_pk, "action": "BUY", "confidence": 0.71, "threshold": 0.5, "reason": "",
                       "order": {"side": "BUY", "quantity": "0.3861", "status": "FILLED", "price": f"{price + 0.01:.2f}",
                                 "reason": ""}}],
        "accounts": {str(account_pk): {"position": "0.3861", "average_price": f"{price + 0.01:.2f}",
                                       "realized_pnl": -1.0, "unrealized_pnl": 0.07, "pnl": -0.93, "orders": 1,
                                       "fills": 1}},
    }


def test_the_candle_timeframes_draw_stored_history_with_floor_pivots(pipeline, viewer, page, live_server_url, artifacts):
    _sign_in(page, live_server_url, viewer)
    pivots = """() => { const d = document.getElementById('chart-candles').data;
      const p = d.find(t => t.name === 'P'); return {candles: d[0].x.length, levels: p.y.filter(v => v !== null).length}; }"""

    page.click("#timeframes [data-timeframe='1m']")
    page.wait_for_selector("#dashboard[data-rendered-timeframe='1m']", state="attached")
    minute = page.evaluate(pivots)
    page.click("#timeframes [data-timeframe='1d']")
    page.wait_for_selector("#dashboard[data-rendered-timeframe='1d']", state="attached")
    day = page.evaluate(pivots)
    span = page.evaluate("() => { const x = document.getElementById('chart-candles').data[0].x; return x[1] - x[0]; }")

    assert minute["candles"] == 240 and day["candles"] == 120  # apps.dashboard.selectors.CANDLES_SHOWN
    assert span == 86_400_000  # one day between candles
    assert minute["levels"] >= 2 * (minute["candles"] - 1)  # stepped: two points per candle after the first
    assert day["levels"] >= 2 * (day["candles"] - 1)
    assert page.get_attribute("#timeframes [data-timeframe='1d']", "aria-pressed") == "true"
    assert page.text_content("#candles-tf") == "1d"
    page.screenshot(path=str(artifacts / "dashboard-1d-1280x800.png"))
    assert page.problems == []
