"""Writes of the accounts app: role groups and the audit log."""
from __future__ import annotations

import logging
from typing import Any

from django.db import models

from apps.accounts.models import AuditLog
from apps.accounts.roles import role_ensure_defaults, user_role  # noqa: F401  (re-exported: the services API)

logger = logging.getLogger(__name__)

# Keys never stored in an audit payload, whatever the caller passes.
_SECRET_KEYS = ("secret", "password", "token", "api_key", "key")


def audit_record(*, user, action: str, target: models.Model | tuple[str, Any] | None = None,
                 payload: dict | None = None, request=None) -> AuditLog:
    """Append one row to the audit log and return it.

    ``target``: a model instance (stored as ``app_label.model`` and its pk) or a ``(type, id)`` pair.
    ``request`` (Django or DRF): the client IP is taken from it (``REMOTE_ADDR``; the ASGI server
    sets it from X-Forwarded-For when run with ``--proxy-headers``). Payload keys that look like
    secrets are replaced by ``"***"``.
    """
    target_type, target_id = "", ""
    if isinstance(target, models.Model):
        target_type, target_id = target._meta.label_lower, str(target.pk)
    elif target is not None:
        target_type, target_id = str(target[0]), str(target[1])
    authenticated = user is not None and user.is_authenticated
    entry = AuditLog.objects.create(
        user=user if authenticated else None, username=user.get_username() if authenticated else "",
        action=action, target_type=target_type, target_id=target_id, payload=_scrub(payload or {}),
        ip=_client_ip(request),
    )
    logger.info("audit: %s", entry)
    return entry


def _scrub(payload: dict) -> dict:
    return {k: ("***" if any(s in str(k).lower() for s in _SECRET_KEYS) else v) for k, v in payload.items()}


def _client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None
