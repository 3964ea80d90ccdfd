"""The annotation page in a real browser: candles and heatmap of a stored session, the position tool,
edit by dragging, delete, and a second user's page following it all live over the websocket."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import islice

import pytest

from apps.accounts.roles import role_ensure_defaults
from tests.e2e.conftest import CHROMIUM_ARGS, PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHART = """() => {
  const div = document.getElementById('chart-annotate');
  const data = div.data || [], layout = div.layout || {};
  return {
    types: data.map(t => t.type),
    candles: data.length ? data[0].x.length : 0,
    heatRows: data.length > 1 ? (data[1].z || []).length : 0,
    heatCols: data.length > 1 ? (data[1].x || []).length : 0,
    shapes: (layout.shapes || []).map(s => ({type: s.type, dash: s.line && s.line.dash, x0: s.x0, x1: s.x1})),
    labels: (layout.annotations || []).map(a => a.text),
  };
}"""

# Page coordinates of (time ms, price) on the candle plot, from Plotly's own axis conversion.
TO_PAGE = """([t, p]) => {
  const div = document.getElementById('chart-annotate'), fl = div._fullLayout, r = div.getBoundingClientRect();
  return [r.left + fl.xaxis._offset + fl.xaxis.l2p(t), r.top + fl.yaxis._offset + fl.yaxis.l2p(p)];
}"""


@pytest.fixture
def stored_session(pipeline):
    """90 s of the recorded spot session through the engine: 1 s candles and COB frames stored."""
    from apps.pipeline.engine import Engine
    from apps.pipeline.runner import default_recordings

    engine = Engine(recordings=default_recordings(), accounts=[])
    list(islice(engine.run(), 90))
    engine.flush()
    return engine


@pytest.fixture
def traders(transactional_db):
    group = role_ensure_defaults()[1]
    ann, bob = UserFactory(username="ann-e2e"), UserFactory(username="bob-e2e")
    group.user_set.add(ann, bob)
    return ann, bob


def _sign_in(page, base_url: str, user, path: str = "/annotations/") -> None:
    page.goto(base_url + path)
    page.wait_for_url(f"**/accounts/login/?next={path}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + path)
    page.wait_for_function("() => +document.getElementById('annotate').dataset.loaded >= 1")
    page.wait_for_selector("#annotate[data-live=true]")


def _second_page(page, base_url: str, user, viewport: dict):
    context = page.context.browser.new_context(viewport=viewport)
    other = context.new_page()
    other.set_default_timeout(30_000)
    other.problems = []
    other.on("console", lambda m: other.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    other.on("pageerror", lambda e: other.problems.append(f"page error: {e}"))
    other.on("requestfailed", lambda r: other.problems.append(f"request failed: {r.url} {r.failure}"))
    _sign_in(other, base_url, user)
    return other


def _db(fn):
    """Run a DB read off this thread: Playwright's event loop runs here and Django refuses it."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_a_trader_marks_edits_and_deletes_a_long_and_another_user_follows_live(
        stored_session, traders, page, live_server_url, artifacts):
    from apps.annotations.models import Annotation

    ann, bob = traders
    _sign_in(page, live_server_url, ann)
    watcher = _second_page(page, live_server_url, bob, {"width": 390, "height": 844})

    chart = page.evaluate(CHART)
    assert chart["types"][:2] == ["candlestick", "heatmap"]
    assert chart["candles"] >= 80  # the stored session's 1 s candles
    assert chart["heatCols"] >= 80 and chart["heatRows"] >= 21  # seconds x price buckets
    assert page.inner_text("#annotate-symbol") == "ETHUSDT"

    # The position tool: long side, click the entry, then the exit above it.
    candles = page.evaluate("() => window.gogoAnnotate.state.candles")
    entry, exit_ = candles[15], candles[60]
    low, high = min(c["l"] for c in candles), max(c["h"] for c in candles)
    entry_price, exit_price = low + (high - low) * 0.25, low + (high - low) * 0.75
    page.click("#tool-position")
    assert page.get_attribute("#tool-position", "aria-pressed") == "true"
    page.mouse.click(*page.evaluate(TO_PAGE, [entry["t"], entry_price]))
    page.mouse.click(*page.evaluate(TO_PAGE, [exit_["t"], exit_price]))
    page.wait_for_selector("#editor:not([hidden])")
    draft = page.evaluate("() => window.gogoAnnotate.state.draft")
    assert abs(draft["entry_time"] - entry["t"]) <= 1000 and abs(draft["exit_time"] - exit_["t"]) <= 1000
    assert draft["entry_price"] == pytest.approx(entry_price, abs=0.05)
    assert draft["side"] == "long"
    assert page.inner_text("#editor-result").startswith("+")  # exit above entry: a long made money
    page.fill("#notes", "bounce off the bid wall")
    page.click("#editor-save")

    page.wait_for_selector("#annotation-list .annotation--own")
    assert "bounce off the bid wall" in page.inner_text("#annotation-list")
    shapes = page.evaluate(CHART)["shapes"]
    assert any(s["type"] == "rect" and s["dash"] == "solid" for s in shapes)  # the saved box, drawn as yours
    assert any(label.startswith("LONG +") and "R:R" in label for label in page.evaluate(CHART)["labels"])
    stored = _db(lambda: list(Annotation.objects.values("side", "notes", "owner__username")))
    assert stored == [{"side": "long", "notes": "bounce off the bid wall", "owner__username": "ann-e2e"}]

    # Bob's page got it live, read-only and marked as ann's.
    watcher.wait_for_selector("#annotation-list .annotation--other")
    assert "ann-e2e" in watcher.inner_text("#annotation-list .annotation--other")
    assert watcher.locator("#annotation-list [data-act=edit]").count() == 0
    assert any(s["dash"] == "dash" for s in watcher.evaluate(CHART)["shapes"])
    page.screenshot(path=str(artifacts / "annotations-1280x800.png"))
    watcher.screenshot(path=str(artifacts / "annotations-watcher-390x844.png"), full_page=True)

    # Edit: drag the exit handle right; the saved change reaches bob.
    page.click("#annotation-list [data-act=edit]")
    handle = page.locator("[data-handle=exit]")
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y, steps=5)
    page.mouse.up()
    moved = page.evaluate("() => window.gogoAnnotate.state.draft.exit_time")
    assert moved > exit_["t"] + 1000
    page.click("#editor-save")
    page.wait_for_function("() => !window.gogoAnnotate.state.draft")
    watcher.wait_for_function(f"() => Object.values(window.gogoAnnotate.state.annotations)[0].exit_time === {moved}")

    # Delete (asks once more), gone on both pages and in the database.
    page.click("#annotation-list [data-act=delete]")
    page.click("#annotation-list [data-act=delete]")
    page.wait_for_selector("#annotation-list .annotation", state="detached")
    watcher.wait_for_selector("#annotation-list .annotation", state="detached")
    assert _db(lambda: Annotation.objects.count()) == 0

    assert _no_sideways_scroll(page) and _no_sideways_scroll(watcher)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(400)
    assert _no_sideways_scroll(page)
    page.screenshot(path=str(artifacts / "annotations-390x844.png"), full_page=True)
    assert page.problems == [] and watcher.problems == []
    watcher.context.close()


def test_a_viewer_sees_the_chart_but_has_no_position_tool(stored_session, viewer, page, live_server_url):
    _sign_in(page, live_server_url, viewer)

    assert page.evaluate(CHART)["candles"] >= 80
    assert page.locator("#tool-position").count() == 0
    assert "can look at annotations but not mark trades" in page.inner_text("#viewer-note")
    assert page.problems == []


def test_on_a_phone_a_short_is_placed_with_two_taps_and_nothing_scrolls_sideways(stored_session, traders, chromium,
                                                                                 live_server_url, artifacts):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        _sign_in(page, live_server_url, traders[0])
        assert _no_sideways_scroll(page)
        assert page.is_visible("#chart-annotate") and page.is_visible("#tool-position")

        # A short, placed with two taps.
        candles = page.evaluate("() => window.gogoAnnotate.state.candles")
        high, low = max(c["h"] for c in candles), min(c["l"] for c in candles)
        page.tap("#tool-side [data-side=short]")
        page.tap("#tool-position")
        page.locator("#chart-annotate").scroll_into_view_if_needed()
        page.touchscreen.tap(*page.evaluate(TO_PAGE, [candles[10]["t"], low + (high - low) * 0.7]))
        page.touchscreen.tap(*page.evaluate(TO_PAGE, [candles[50]["t"], low + (high - low) * 0.3]))
        page.wait_for_selector("#editor:not([hidden])")
        page.tap("#editor-save")
        page.wait_for_selector("#annotation-list .annotation--own")
        assert "SHORT" in page.inner_text("#annotation-list") and "+" in page.inner_text("#annotation-list")
        assert _no_sideways_scroll(page)
        page.screenshot(path=str(artifacts / "annotations-phone.png"), full_page=True)
        context.close()
        browser.close()
    assert problems == []
