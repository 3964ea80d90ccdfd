"""Accounts in a real browser: sign in, the account page through the user menu, password change,
log out through the menu (a POST), and the navigation folding into a menu on a phone."""
from __future__ import annotations

import pytest

from apps.accounts.roles import role_ensure_defaults
from apps.trading.models import TradingAccount
from tests.e2e.conftest import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
NEW_PASSWORD = "Brand-new-long-pass-2024"


@pytest.fixture
def trader(transactional_db):
    user = UserFactory(username="tess-e2e")
    user.groups.add(role_ensure_defaults()[1])
    TradingAccount.objects.create(owner=user, name="paper-e2e")
    return user


def _sign_in(page, base_url: str, username: str, password: str, next_path: str = "") -> None:
    """Sign in through the form; with ``next_path``, start there (so no other page is left mid-load)."""
    page.goto(base_url + (next_path or "/accounts/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_sign_in_change_the_password_and_log_out(trader, page, live_server_url, artifacts):
    _sign_in(page, live_server_url, trader.username, PASSWORD, next_path="/accounts/password/")
    page.wait_for_url(live_server_url + "/accounts/password/")

    page.click(".usermenu__summary")
    page.click(".usermenu__panel >> text=Account")
    page.wait_for_url(live_server_url + "/accounts/")
    assert page.inner_text("#account-role") == "trader"
    assert "paper-e2e" in page.inner_text("#trading-accounts")
    assert page.locator(".topnav__links a[href='/admin/']").count() == 0  # not staff: no Admin link
    page.screenshot(path=str(artifacts / "account-1280x800.png"), full_page=True)

    page.click(".usermenu__summary")
    page.click(".usermenu__panel >> text=Change password")
    page.wait_for_url(live_server_url + "/accounts/password/")
    page.fill("#id_old_password", "not-my-password")
    page.fill("#id_new_password1", NEW_PASSWORD)
    page.fill("#id_new_password2", NEW_PASSWORD)
    page.click("button[type=submit]")
    assert "old password was entered incorrectly" in page.inner_text("main")
    page.fill("#id_old_password", PASSWORD)
    page.fill("#id_new_password1", NEW_PASSWORD)
    page.fill("#id_new_password2", NEW_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server_url + "/accounts/password/done/")
    assert "Your password was changed" in page.inner_text("[role=status]")

    page.click(".usermenu__summary")
    page.click(".usermenu__panel >> text=Log out")
    page.wait_for_url(live_server_url + "/accounts/login/")
    page.goto(live_server_url + "/accounts/")
    page.wait_for_url("**/accounts/login/?next=/accounts/")  # signed out

    _sign_in(page, live_server_url, trader.username, PASSWORD)
    assert "correct username and password" in page.inner_text("[role=alert]")
    _sign_in(page, live_server_url, trader.username, NEW_PASSWORD)
    page.wait_for_url(live_server_url + "/")
    assert page.problems == []


def test_on_a_phone_the_navigation_folds_into_a_menu(trader, page, live_server_url, artifacts):
    page.set_viewport_size({"width": 390, "height": 844})
    _sign_in(page, live_server_url, trader.username, PASSWORD, next_path="/accounts/")
    page.wait_for_url(live_server_url + "/accounts/")

    assert page.is_visible(".topnav__toggle") and not page.is_visible(".topnav__links")
    assert _no_sideways_scroll(page)
    page.click(".topnav__toggle")
    assert page.get_attribute(".topnav__toggle", "aria-expanded") == "true"
    for label in ("Dashboard", "Control", "Annotate", "Backtests", "API docs"):
        assert page.is_visible(f".topnav__links >> text={label}")
    page.click(".usermenu__summary")
    assert page.is_visible(".usermenu__panel >> text=Log out")
    assert _no_sideways_scroll(page)
    page.screenshot(path=str(artifacts / "account-menu-390x844.png"), full_page=True)

    page.click(".topnav__links >> text=Annotate")
    page.wait_for_url(live_server_url + "/annotations/")
    assert not page.is_visible(".topnav__links")  # a new page starts folded
    assert _no_sideways_scroll(page)
    assert page.problems == []
