"""Users of each role with API clients, a few stored rows, and the operations of the live schema."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.accounts.roles import ADMIN, TRADER, VIEWER, role_ensure_defaults
from apps.market.models import CobFrame, DataGap, Instrument
from apps.predictions.models import Prediction

# Routes anyone may call: load balancer probes, the schema and its UI, the token exchange.
PUBLIC_OPERATIONS = {("/api/v1/health/", "get"), ("/api/v1/ready/", "get"), ("/api/v1/auth/token/", "post")}
WRITE_METHODS = ("post", "put", "patch", "delete")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"api-user{n}")
    password = factory.django.Password("a-long-test-password")


def _user_with_role(role: str):
    role_ensure_defaults()
    user = UserFactory(is_staff=role == ADMIN)
    if role != VIEWER:
        user.groups.add(Group.objects.get(name=role))
    return user


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def viewer(db):
    return _user_with_role(VIEWER)


@pytest.fixture
def trader(db):
    return _user_with_role(TRADER)


@pytest.fixture
def admin(db):
    return _user_with_role(ADMIN)


@pytest.fixture
def as_viewer(viewer) -> APIClient:
    return _client(viewer)


@pytest.fixture
def as_trader(trader) -> APIClient:
    return _client(trader)


@pytest.fixture
def as_admin(admin) -> APIClient:
    return _client(admin)


@pytest.fixture
def eth(db) -> Instrument:
    return Instrument.objects.get(venue=Instrument.Venue.BINANCE, symbol="ETHUSDT")


@pytest.fixture
def market_rows(eth):
    """Three COB frames, a data gap and two predictions of ETHUSDT at 2024-08-08 10:00:00..02 UTC."""
    t0 = datetime(2024, 8, 8, 10, tzinfo=UTC)
    n = 2 * eth.bucket_count + 1
    for i in range(3):
        CobFrame.objects.create(
            instrument=eth, ts=t0 + timedelta(seconds=i), mid=Decimal("2680.5"), best_bid=Decimal("2680.4"),
            best_ask=Decimal("2680.6"), bucket_width=eth.bucket_width, first_bucket_price=Decimal("2660"),
            bid_usd=[1000.0] * n, ask_usd=[500.0] * n, imbalance=[0.33] * n, imbalance_5=0.33, ma_1s=0.3, ma_5s=0.2,
            ma_15s=0.1, ma_60s=0.0)
    DataGap.objects.create(instrument=eth, cause=DataGap.Cause.SEQUENCE_GAP, ts_event=t0, detail="U/u mismatch")
    for i, status in enumerate((Prediction.Status.PREDICTED, Prediction.Status.SKIPPED)):
        Prediction.objects.create(instrument=eth, model_name="cnn", ts_event=t0 + timedelta(seconds=i), status=status,
                                  action="BUY" if i == 0 else "", confidence=0.6 if i == 0 else None,
                                  input_package=b"\x00secret-binary")
    return t0


def schema_operations() -> list[tuple[str, str, dict]]:
    """(path, method, operation) of every operation in the generated OpenAPI schema."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()
            if method in ("get", "post", "put", "patch", "delete")]


def concrete(path: str, ids: dict[str, int]) -> str:
    """The path with each ``{param}`` replaced by an id of an existing row (``ids`` by param name)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), 1)), path)
