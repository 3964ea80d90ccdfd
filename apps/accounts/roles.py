"""Roles: viewer (reads), trader (reads, trading controls), admin (everything, configuration).

Roles are Django groups named after them. Staff and superusers are admins whatever their groups; an
authenticated user in no role group is a viewer. ``apps.risk.selectors.user_can_trade`` reads the
same "trader" group.
"""
from __future__ import annotations

VIEWER, TRADER, ADMIN = "viewer", "trader", "admin"
ROLES = (VIEWER, TRADER, ADMIN)
_RANK = {VIEWER: 0, TRADER: 1, ADMIN: 2}


def user_role(user) -> str | None:
    """The user's highest role, or None for an anonymous (or inactive) user."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_staff or user.is_superuser:
        return ADMIN
    names = set(user.groups.filter(name__in=(TRADER, ADMIN)).values_list("name", flat=True))
    if ADMIN in names:
        return ADMIN
    return TRADER if TRADER in names else VIEWER


def role_at_least(user, role: str) -> bool:
    """True when ``user`` holds ``role`` or a higher one (viewer < trader < admin)."""
    held = user_role(user)
    return held is not None and _RANK[held] >= _RANK[role]


def role_ensure_defaults() -> list:
    """Create the viewer, trader and admin groups if missing (idempotent); returns them."""
    from django.contrib.auth.models import Group

    return [Group.objects.get_or_create(name=name)[0] for name in ROLES]
