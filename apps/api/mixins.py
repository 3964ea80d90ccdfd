"""Per-user object access for rows that belong to someone (trading accounts, orders, annotations)."""
from __future__ import annotations

from django.db.models import QuerySet
from rest_framework.permissions import SAFE_METHODS

from apps.accounts.permissions import request_role
from apps.accounts.roles import ADMIN


class OwnedQuerysetMixin:
    """Filter a viewset's queryset to the rows the requesting user owns, unless they are an admin.

    ``owner_path`` is the ORM path from the model to its owning user, e.g. ``"owner"`` for a
    TradingAccount or an Annotation, ``"account__owner"`` for an Order, ``"order__account__owner"``
    for a Fill. Because the filter applies to ``get_queryset``, another user's row is a 404 on
    retrieve, update, delete and every detail action, and never appears in a list.

    ``read_all = True`` (annotations: the web UI shows everyone's, read-only) lets every role read
    every row; the owner filter then applies to writes only, so changing another user's row is
    still a 404.
    """

    owner_path: str = "owner"
    read_all: bool = False

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular building the schema
            return queryset.none()
        if self.read_all and self.request.method in SAFE_METHODS:
            return queryset
        user = self.request.user
        if request_role(user) == ADMIN:
            return queryset
        return queryset.filter(**{self.owner_path: user})
