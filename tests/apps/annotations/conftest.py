"""Users with roles, the instrument, and a short replayed session stored as 1 s candles and COB frames."""
from __future__ import annotations

import uuid
from itertools import islice

import factory
import pytest
from django.contrib.auth import get_user_model

from apps.accounts.roles import role_ensure_defaults
from apps.market.models import Instrument

PASSWORD = "a-long-test-password"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"annotator{n}")
    password = factory.django.Password(PASSWORD)


def trader(username: str):
    """A user in the "trader" group."""
    user = UserFactory(username=username)
    user.groups.add(role_ensure_defaults()[1])
    return user


@pytest.fixture
def eth(db) -> Instrument:
    return Instrument.objects.get(venue="binance", symbol="ETHUSDT")


@pytest.fixture
def stored_session(db):
    """The first 40 s of the recorded spot session run through the engine: 1 s candles and COB frames stored."""
    from apps.pipeline.engine import Engine
    from apps.pipeline.runner import default_recordings

    engine = Engine(recordings=default_recordings(), accounts=[])
    list(islice(engine.run(), 40))
    engine.flush()
    return engine


@pytest.fixture
def channel_layer_prefix(settings) -> str:
    """The configured channel layer (Redis in tests) under a prefix of this test only."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    layer = dict(settings.CHANNEL_LAYERS["default"])
    if "RedisChannelLayer" in layer["BACKEND"]:
        layer["CONFIG"] = {**layer.get("CONFIG", {}), "prefix": prefix}
    settings.CHANNEL_LAYERS = {"default": layer}
    return prefix
