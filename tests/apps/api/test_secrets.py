"""Exchange credentials never leave the server: every GET of the API (as the owner and as an
admin, who sees every row) and the admin pages of the account are searched for the stored
ciphertext and the plain text."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model

from apps.accounts.models import AuditLog
from apps.trading.models import TradingAccount
from tests.apps.api.conftest import _client, owned_rows, path_for, row_ids, schema_operations

pytestmark = pytest.mark.django_db
PLAIN_KEY, PLAIN_SECRET = "AKIA-plain-api-key-4711", "plain-api-secret-0815"
GETS = [p for p, m, _ in schema_operations() if m == "get"]


@pytest.fixture
def stored(monkeypatch, trader, as_trader, eth, market_rows):
    monkeypatch.setenv("GOGO_SECRETS_KEY", Fernet.generate_key().decode())
    ids = owned_rows(trader, eth)
    response = as_trader.post(f"/api/v1/accounts/{ids['accounts']}/credentials/",
                              {"api_key": PLAIN_KEY, "api_secret": PLAIN_SECRET}, format="json")
    assert response.status_code == 200
    account = TradingAccount.objects.get(pk=ids["accounts"])
    ids["audit"] = AuditLog.objects.get(action="account.credentials").pk
    leaks = [PLAIN_KEY, PLAIN_SECRET, account.api_key_encrypted, account.api_secret_encrypted]
    return ids, [value.encode() for value in leaks], response


def test_the_credentials_answer_itself_holds_no_secret(stored):
    _, leaks, response = stored
    assert not [leak for leak in leaks if leak in response.content]


@pytest.mark.parametrize("path", GETS, ids=GETS)
def test_no_api_response_holds_a_credential(stored, trader, admin, eth, path):
    ids, leaks, _ = stored
    for client in (_client(trader), _client(admin)):
        response = client.get(path_for(path, row_ids(eth, ids)))
        assert response.status_code in (200, 403), response.content
        assert not [leak for leak in leaks if leak in response.content], path


def test_no_admin_page_of_the_account_holds_a_credential(stored, client):
    ids, leaks, _ = stored
    client.force_login(get_user_model().objects.create_superuser("root", password="a-long-test-password"))
    for url in ("/admin/trading/tradingaccount/", f"/admin/trading/tradingaccount/{ids['accounts']}/change/",
                f"/admin/trading/tradingaccount/{ids['accounts']}/history/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert not [leak for leak in leaks if leak in response.content], url
