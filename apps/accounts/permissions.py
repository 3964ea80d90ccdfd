"""DRF permission classes matching the web roles (apps.accounts.roles).

- ``IsViewer``: any authenticated, active user may read (GET/HEAD/OPTIONS); nothing else.
- ``IsTraderOrReadOnly``: reads for viewers; writes and control actions for traders and admins.
- ``IsAdminOrReadOnly``: reads for viewers; writes (configuration) for admins only.
- ``IsAdminRole``: every method, admins only.

Object-level ownership (a user never sees another user's accounts, orders, annotations) is not a
permission here but a queryset filter (``apps.api.mixins.OwnedQuerysetMixin``): other users' rows
are 404, never 403, so their ids leak nothing.
"""
from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from apps.accounts.roles import ADMIN, TRADER, VIEWER, role_at_least


class _RolePermission(BasePermission):
    read_role = VIEWER
    write_role = ADMIN

    def has_permission(self, request, view) -> bool:
        role = self.read_role if request.method in SAFE_METHODS else self.write_role
        return role_at_least(request.user, role)


class IsViewer(_RolePermission):
    write_role = None  # type: ignore[assignment]

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS and role_at_least(request.user, VIEWER)


class IsTraderOrReadOnly(_RolePermission):
    write_role = TRADER


class IsAdminOrReadOnly(_RolePermission):
    write_role = ADMIN


class IsAdminRole(_RolePermission):
    read_role = ADMIN
    write_role = ADMIN
