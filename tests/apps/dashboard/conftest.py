"""Rows and an isolated channel layer for the dashboard tests."""
from __future__ import annotations

import uuid

import factory
import pytest
from django.contrib.auth import get_user_model

from apps.trading.models import TradingAccount


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("a-long-test-password")


class TradingAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TradingAccount

    owner = factory.SubFactory(UserFactory)
    name = "paper"


@pytest.fixture
def channel_layer_prefix(settings) -> str:
    """The configured channel layer (Redis in tests) under a prefix of this test only, so a
    concurrent run or a dev server publishing to the ``dashboard`` group cannot leak in."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    layer = dict(settings.CHANNEL_LAYERS["default"])
    if "RedisChannelLayer" in layer["BACKEND"]:
        layer["CONFIG"] = {**layer.get("CONFIG", {}), "prefix": prefix}
    settings.CHANNEL_LAYERS = {"default": layer}  # channels drops its cached layers on this signal
    return prefix
