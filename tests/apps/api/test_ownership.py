"""OwnedQuerysetMixin: a user never reads or changes another user's rows; admins see all.

Exercised on a viewset defined here over TradingAccount (owner path ``owner``) until the trading
endpoints are registered; then the generated test below covers them too."""
from __future__ import annotations

import pytest
from rest_framework import serializers, viewsets
from rest_framework.test import APIRequestFactory, force_authenticate

from apps.accounts.permissions import IsTraderOrReadOnly
from apps.api.mixins import OwnedQuerysetMixin
from apps.trading.models import TradingAccount
from tests.apps.api.conftest import UserFactory, _user_with_role, schema_operations

pytestmark = pytest.mark.django_db


class _AccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = TradingAccount
        fields = ["id", "name", "auto_trade"]


class _AccountViewSet(OwnedQuerysetMixin, viewsets.ModelViewSet):
    queryset = TradingAccount.objects.order_by("pk")
    serializer_class = _AccountSerializer
    permission_classes = [IsTraderOrReadOnly]
    owner_path = "owner"


def _call(user, method: str, pk: int | None = None, data: dict | None = None):
    factory = APIRequestFactory()
    request = getattr(factory, method)("/x/", data or {}, format="json")
    force_authenticate(request, user=user)
    actions = {"get": "retrieve" if pk else "list", "patch": "partial_update", "delete": "destroy"}
    view = _AccountViewSet.as_view({method: actions[method]})
    return view(request, pk=pk) if pk else view(request)


def test_a_user_lists_only_their_own_rows_and_gets_404_for_anothers():
    alice, bob = _user_with_role("trader"), _user_with_role("trader")
    mine = TradingAccount.objects.create(owner=alice, name="paper")
    TradingAccount.objects.create(owner=bob, name="paper")
    assert [r["id"] for r in _call(alice, "get").data["results"]] == [mine.pk]
    other = TradingAccount.objects.get(owner=bob)
    assert _call(alice, "get", other.pk).status_code == 404
    assert _call(alice, "patch", other.pk, {"auto_trade": False}).status_code == 404
    assert _call(alice, "delete", other.pk).status_code == 404
    other.refresh_from_db()
    assert other.auto_trade and TradingAccount.objects.filter(pk=other.pk).exists()
    assert _call(alice, "patch", mine.pk, {"auto_trade": False}).status_code == 200


def test_an_admin_sees_every_users_rows():
    TradingAccount.objects.create(owner=UserFactory(), name="a")
    TradingAccount.objects.create(owner=UserFactory(), name="b")
    assert len(_call(_user_with_role("admin"), "get").data["results"]) == TradingAccount.objects.count()


def _owned_operations() -> list[tuple[str, str]]:
    from django.urls import resolve

    owned = []
    for path, method, _ in schema_operations():
        view = resolve(path.replace("{id}", "1").replace("{instrument}", "1")).func
        if issubclass(getattr(view, "cls", object), OwnedQuerysetMixin):
            owned.append((path, method))
    return owned


OWNED = _owned_operations()


# Owned-row endpoints with a cross-user test of their own; the trading, risk and annotation
# endpoints add theirs here when they are registered.
COVERED: set[tuple[str, str]] = set()


def test_every_owned_row_endpoint_has_a_cross_user_test():
    assert set(OWNED) <= COVERED, sorted(set(OWNED) - COVERED)
