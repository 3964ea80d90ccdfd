"""Writes of annotations (hand-marked trades), with ownership checks.

Only the owner may change or delete an annotation; staff users may change anyone's (moderation).
"""
from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import transaction

from apps.annotations.models import Annotation
from apps.market.models import Instrument

logger = logging.getLogger(__name__)

_EDITABLE = ("instrument", "side", "entry_time", "entry_price", "exit_time", "exit_price", "notes")


def _check_owner(annotation: Annotation, user) -> None:
    if not (user.is_authenticated and (annotation.owner_id == user.pk or user.is_staff)):
        raise PermissionDenied(f"annotation {annotation.pk} belongs to another user")


def annotation_create(*, owner, instrument: Instrument, side: str, entry_time: datetime, entry_price: Decimal,
                      exit_time: datetime, exit_price: Decimal, notes: str = "") -> Annotation:
    """Create an annotation of ``owner``. Times aware UTC, prices USD (> 0).

    Raises:
        django.core.exceptions.ValidationError: naming the field (exit not after entry, price <= 0,
            unknown side, naive time).
    """
    annotation = Annotation(owner=owner, instrument=instrument, side=side, entry_time=entry_time,
                            entry_price=entry_price, exit_time=exit_time, exit_price=exit_price, notes=notes)
    annotation.full_clean()
    annotation.save()
    logger.info("annotation %s created by %s", annotation.pk, owner)
    return annotation


def annotation_update(*, annotation: Annotation, user, **fields) -> Annotation:
    """Change ``fields`` (a subset of instrument, side, entry/exit time and price, notes).

    Raises:
        PermissionDenied: ``user`` is neither the owner nor staff.
        ValueError: a field that cannot be edited. ValidationError: as annotation_create.
    """
    _check_owner(annotation, user)
    unknown = sorted(set(fields) - set(_EDITABLE))
    if unknown:
        raise ValueError(f"fields {unknown} cannot be edited; editable: {list(_EDITABLE)}")
    with transaction.atomic():
        annotation = Annotation.objects.select_for_update().get(pk=annotation.pk)
        for name, value in fields.items():
            setattr(annotation, name, value)
        annotation.full_clean()
        annotation.save()
    return annotation


def annotation_delete(*, annotation: Annotation, user) -> None:
    """Delete ``annotation``. Raises PermissionDenied unless ``user`` owns it or is staff."""
    _check_owner(annotation, user)
    annotation.delete()
