"""Per-user object access for rows that belong to someone (trading accounts, orders, annotations)."""
from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.roles import ADMIN, user_role


class OwnedQuerysetMixin:
    """Filter a viewset's queryset to the rows the requesting user owns, unless they are an admin.

    ``owner_path`` is the ORM path from the model to its owning user, e.g. ``"owner"`` for a
    TradingAccount or an Annotation, ``"account__owner"`` for an Order, ``"order__account__owner"``
    for a Fill. Because the filter applies to ``get_queryset``, another user's row is a 404 on
    retrieve, update, delete and every detail action, and never appears in a list.
    """

    owner_path: str = "owner"

    def get_queryset(self) -> QuerySet:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular building the schema
            return queryset.none()
        user = self.request.user
        if user_role(user) == ADMIN:
            return queryset
        return queryset.filter(**{self.owner_path: user})
