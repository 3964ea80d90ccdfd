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

from apps.accounts.roles import ADMIN, ROLES, TRADER, VIEWER, user_role

_ROLE_ATTR = "_gogo_role"


def remember_role(user, role: str | None):
    """Attach ``role`` to ``user`` (this request's user object) so it is looked up once; returns user."""
    setattr(user, _ROLE_ATTR, role)
    return user


def request_role(user) -> str | None:
    """``apps.accounts.roles.user_role`` once per user object: the group query runs at most once
    per request (never for a user from the API's token cache, which carries its role)."""
    if user is None or not user.is_authenticated:
        return None
    if not hasattr(user, _ROLE_ATTR):
        remember_role(user, user_role(user))
    return getattr(user, _ROLE_ATTR)


def request_role_at_least(user, role: str) -> bool:
    held = request_role(user)
    return held is not None and ROLES.index(held) >= ROLES.index(role)  # viewer < trader < admin


class _RolePermission(BasePermission):
    read_role = VIEWER
    write_role = ADMIN

    def has_permission(self, request, view) -> bool:
        role = self.read_role if request.method in SAFE_METHODS else self.write_role
        return request_role_at_least(request.user, role)


class IsViewer(_RolePermission):
    write_role = None  # type: ignore[assignment]

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS and request_role_at_least(request.user, VIEWER)


class IsTraderOrReadOnly(_RolePermission):
    write_role = TRADER


class IsAdminOrReadOnly(_RolePermission):
    write_role = ADMIN


class IsAdminRole(_RolePermission):
    read_role = ADMIN
    write_role = ADMIN
