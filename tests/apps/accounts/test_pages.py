"""Account pages: the account overview (role, trading accounts, never secrets), password change,
POST-only logout, and the site navigation by role."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.test import Client

from apps.accounts.roles import role_ensure_defaults
from apps.trading.models import TradingAccount

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-test-password"


@pytest.fixture
def trader():
    user = get_user_model().objects.create_user("tess", password=PASSWORD)
    user.groups.add(role_ensure_defaults()[1])
    return user


def _signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_account_page_shows_the_role_and_the_users_trading_accounts_only(trader, monkeypatch):
    from apps.trading.services import account_set_credentials

    monkeypatch.setenv("GOGO_SECRETS_KEY", Fernet.generate_key().decode())
    mine = TradingAccount.objects.create(owner=trader, name="paper-main", fee_rate="0.00075")
    account_set_credentials(account=mine, api_key="key-that-must-not-show", api_secret="secret-that-must-not-show")
    other = get_user_model().objects.create_user("olga")
    TradingAccount.objects.create(owner=other, name="olgas-account")

    html = _signed_in(trader).get("/accounts/").content.decode()
    assert '<span class="badge badge--info" id="account-role">trader</span>' in html
    assert "paper-main" in html and "olgas-account" not in html
    assert "0.075%" in html and "stored" in html  # taker fee in percent; credentials: only whether stored
    mine.refresh_from_db()
    for secret in ("key-that-must-not-show", "secret-that-must-not-show", mine.api_key_encrypted):
        assert secret not in html


def test_a_viewer_is_told_they_cannot_act():
    viewer = get_user_model().objects.create_user("vic", password=PASSWORD)
    html = _signed_in(viewer).get("/accounts/").content.decode()
    assert 'id="account-role">viewer<' in html and "cannot press controls" in html
    assert "No trading account yet" in html


def test_anonymous_users_are_sent_to_login():
    for path in ("/accounts/", "/accounts/password/"):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith(f"/accounts/login/?next={path}")


def test_the_password_change_checks_the_old_password_and_keeps_the_session(trader):
    client = _signed_in(trader)
    wrong = client.post("/accounts/password/", {"old_password": "nope", "new_password1": "Another-long-pass-42",
                                                "new_password2": "Another-long-pass-42"})
    assert wrong.status_code == 200 and "Your old password was entered incorrectly" in wrong.content.decode()
    weak = client.post("/accounts/password/", {"old_password": PASSWORD, "new_password1": "123",
                                               "new_password2": "123"})
    assert "This password is too short" in weak.content.decode()

    done = client.post("/accounts/password/", {"old_password": PASSWORD, "new_password1": "Another-long-pass-42",
                                               "new_password2": "Another-long-pass-42"}, follow=True)
    assert done.redirect_chain[-1][0] == "/accounts/password/done/"
    assert "Password changed" in done.content.decode()
    assert client.get("/accounts/").status_code == 200  # still signed in
    trader.refresh_from_db()
    assert trader.check_password("Another-long-pass-42") and not trader.check_password(PASSWORD)


def test_logout_is_a_post_and_ends_the_session(trader):
    client = _signed_in(trader)
    assert client.get("/accounts/logout/").status_code == 405
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert client.get("/accounts/").status_code == 302


def test_the_navigation_shows_admin_only_to_staff_and_marks_the_current_page(trader):
    html = _signed_in(trader).get("/accounts/").content.decode()
    for href in ('href="/"', 'href="/control/"', 'href="/annotations/"', 'href="/backtests/"', 'href="/api/v1/docs/"',
                 'href="/accounts/password/"', 'action="/accounts/logout/"'):
        assert href in html
    assert 'href="/admin/"' not in html
    assert '<a href="/annotations/" aria-current="page">' in _signed_in(trader).get("/annotations/").content.decode()

    staff = get_user_model().objects.create_user("root", password=PASSWORD, is_staff=True)
    assert 'href="/admin/"' in _signed_in(staff).get("/accounts/").content.decode()
