"""django-axes: repeated failed logins lock the username out from that address (web and API token)."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-test-password"


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password=PASSWORD)


def _web_login(client, password: str):
    return client.post("/accounts/login/", {"username": "alice", "password": password})


def test_the_right_password_signs_in_before_the_limit(client, user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _web_login(client, "wrong").status_code == 200  # the form again, with its error
    assert _web_login(client, PASSWORD).status_code == 302


def test_after_the_limit_even_the_right_password_is_refused(client, user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _web_login(client, "wrong")
    response = _web_login(client, PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_username_so_others_still_sign_in(client, user, settings):
    get_user_model().objects.create_user("bob", password=PASSWORD)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _web_login(client, "wrong")
    assert client.post("/accounts/login/", {"username": "bob", "password": PASSWORD}).status_code == 302


def test_the_api_token_exchange_counts_failures_and_locks_out_too(client, user, settings):
    def token(password: str):
        return client.post("/api/v1/auth/token/", {"username": "alice", "password": password}, content_type="application/json")

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert token("wrong").status_code == 400
    assert token("wrong").status_code == 429  # the failure that reaches the limit locks out at once
    locked = token(PASSWORD)
    assert locked.status_code == 429 and b"token" not in locked.content.lower().replace(b"csrftoken", b"")


def test_the_api_token_exchange_returns_the_token_and_role(client, user):
    body = client.post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD}, content_type="application/json").json()
    assert len(body["token"]) == 40 and body["role"] == "viewer"
