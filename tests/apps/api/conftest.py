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
from apps.annotations.models import Annotation
from apps.backtest.models import BacktestRun
from apps.market.models import CobFrame, DataGap, Instrument
from apps.predictions.models import Prediction
from apps.risk.models import RiskEvent, RiskLimit, RiskState
from apps.trading.models import Decision, Fill, Order, OrderEvent, Position, TradingAccount

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


def database_url(db: dict) -> str:
    """The DATABASE_URL of a Django DATABASES entry (the test database, seen by a server process)."""
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(autouse=True)
def _no_cached_pages():
    """Each test reads pages it built itself (the candles hot cache lives in the shared Redis)."""
    from apps.api.hotcache import page_cache_clear

    page_cache_clear()
    yield


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


def owned_rows(user, instrument: Instrument, name: str = "paper") -> dict[str, int]:
    """One row of every per-user kind for ``user``: {API collection name: the id its detail route
    takes} (``risk-states`` are addressed by account id)."""
    t0 = datetime(2024, 8, 8, 10, tzinfo=UTC)
    account = TradingAccount.objects.create(owner=user, name=name)
    decision = Decision.objects.create(account=account, instrument=instrument, ts_event=t0, action="BUY",
                                       confidence=0.7, threshold=0.34, reason="test")
    order = Order.objects.create(account=account, instrument=instrument, decision=decision,
                                 client_order_id=f"test-{account.pk}-{name}", side="BUY", order_type="LIMIT",
                                 price=Decimal("2600"), quantity=Decimal("0.5"), ts_event=t0)
    event = OrderEvent.objects.create(order=order, seq=0, status="NEW", ts_event=t0)
    fill = Fill.objects.create(order=order, seq=0, price=Decimal("2600"), quantity=Decimal("0.1"), fee=Decimal("0.26"),
                               ts_event=t0)
    position = Position.objects.create(account=account, instrument=instrument, quantity=Decimal("0.1"),
                                       average_price=Decimal("2600"))
    limit = RiskLimit.objects.create(account=account, instrument=instrument)
    RiskState.objects.create(account=account, equity=Decimal("10000"))
    risk_event = RiskEvent.objects.create(account=account, instrument=instrument, kind="rejected", rule="max_position",
                                          reason="test", ts_event=t0)
    annotation = Annotation.objects.create(owner=user, instrument=instrument, side="long", entry_time=t0,
                                           entry_price=Decimal("2600"), exit_time=t0 + timedelta(minutes=5),
                                           exit_price=Decimal("2610"), notes="mine")
    return {"accounts": account.pk, "decisions": decision.pk, "orders": order.pk, "order-events": event.pk,
            "fills": fill.pk, "positions": position.pk, "risk-limits": limit.pk, "risk-states": account.pk,
            "risk-events": risk_event.pk, "annotations": annotation.pk}


def row_ids(eth: Instrument, owned: dict[str, int] | None = None) -> dict[str, int]:
    """An existing row's id per API collection (market rows, checkpoints, a backtest and a training run, and the
    ``owned`` rows), so that a 403/404 in a generated test is about permission, not absence."""
    from apps.predictions.models import ModelCheckpoint, TrainingRun

    run = BacktestRun.objects.values_list("pk", flat=True).first() or BacktestRun.objects.create(name="t").pk
    training = (TrainingRun.objects.values_list("pk", flat=True).first()
                or TrainingRun.objects.create(model_name="cnn", kind="fine_tune", state="skipped").pk)
    ids = {"instruments": eth.pk, "cob-frames": CobFrame.objects.values_list("pk", flat=True).first(),
           "data-gaps": DataGap.objects.values_list("pk", flat=True).first(),
           "predictions": Prediction.objects.values_list("pk", flat=True).first(),
           "checkpoints": ModelCheckpoint.objects.values_list("pk", flat=True).first(), "backtests": run,
           "streams": eth.pk, "training-runs": training, **(owned or {})}
    return {k: v for k, v in ids.items() if v}


def path_for(path: str, ids: dict[str, int]) -> str:
    """``path`` with its ``{param}`` replaced by the id of its collection's row in ``ids`` (``row_ids``)."""
    collection = path.removeprefix("/api/v1/").split("/", 1)[0]
    return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(collection, 1)), path)


# Tables an API request may write; a refused request must leave every row of them as it was.
WRITTEN_TABLES = ("accounts.AuditLog", "market.Instrument", "market.MarketStream", "predictions.ModelCheckpoint",
                  "predictions.ModelSetting", "predictions.TrainingRun", "trading.TradingAccount", "trading.OrchestratorConfig",
                  "trading.Decision", "trading.Order", "trading.OrderEvent", "trading.Fill", "trading.Position",
                  "risk.RiskLimit", "risk.RiskState", "risk.RiskEvent", "annotations.Annotation", "backtest.BacktestRun")


def snapshot() -> dict[str, list[str]]:
    """Every row (all columns) of WRITTEN_TABLES, to compare before and after a request."""
    from django.apps import apps

    return {label: sorted(map(str, apps.get_model(label).objects.values_list())) for label in WRITTEN_TABLES}


def schema_operations() -> list[tuple[str, str, dict]]:
    """(path, method, operation) of every operation in the generated OpenAPI schema."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()
            if method in ("get", "post", "put", "patch", "delete")]


def concrete(path: str, ids: dict[str, int]) -> str:
    """The path with each ``{param}`` replaced by an id of an existing row (``ids`` by param name)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), 1)), path)
