"""Trading fixtures: a user's paper account, the ETHUSDT instrument, a live account with test keys."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model

from apps.market.models import Instrument
from apps.trading.services import account_ensure_paper


@pytest.fixture
def eth(db):
    return Instrument.objects.get(venue="binance", symbol="ETHUSDT")


@pytest.fixture
def account(db):
    user = get_user_model().objects.create_user("trader")
    return account_ensure_paper(owner=user)


@pytest.fixture
def secrets_key(monkeypatch):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("GOGO_SECRETS_KEY", key)
    return key
