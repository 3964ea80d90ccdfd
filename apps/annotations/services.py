"""Writes of annotations (hand-marked trades), with role and ownership checks and live broadcast.

Who may write (decision for issue 8, "viewers cannot act"): an annotation is a training case that
shapes the models, so creating, changing and deleting need the trader or admin role
(``apps.accounts.roles``); viewers only read. Only the owner may change or delete an annotation;
staff users may change or delete anyone's (moderation). Every committed write is published to the
instrument's channel-layer group (:func:`apps.annotations.events.annotation_publish`), so every open
annotation page of that instrument updates.
"""
from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.accounts.roles import TRADER, role_at_least
from apps.annotations.events import annotation_publish
from apps.annotations.models import Annotation
from apps.market.models import Instrument

logger = logging.getLogger(__name__)

_EDITABLE = ("instrument", "side", "entry_time", "entry_price", "exit_time", "exit_price", "notes")


def _check_role(user) -> None:
    if not role_at_least(user, TRADER):
        raise PermissionDenied("annotating needs the trader or admin role; viewers may only look")


def annotation_check_change(*, annotation: Annotation, user) -> None:
    """Raise PermissionDenied unless ``user`` may change or delete ``annotation`` (a trader or
    admin who owns it, or staff)."""
    _check_role(user)
    if not (annotation.owner_id == user.pk or user.is_staff):
        raise PermissionDenied(f"annotation {annotation.pk} belongs to another user")


def _check_fields(annotation: Annotation) -> None:
    """Field-named errors the model's constraints would only report as a whole."""
    errors: dict[str, list[str]] = {}
    for name in ("entry_time", "exit_time"):
        value = getattr(annotation, name)
        if isinstance(value, datetime) and value.utcoffset() is None:
            errors[name] = ["must be an aware (UTC) time, got a naive one"]
    if not errors and isinstance(annotation.entry_time, datetime) and isinstance(annotation.exit_time, datetime) \
            and annotation.exit_time <= annotation.entry_time:
        errors["exit_time"] = ["must be after entry_time (annotation_exit_after_entry)"]
    for name in ("entry_price", "exit_price"):
        value = getattr(annotation, name)
        if isinstance(value, Decimal | int | float) and value <= 0:
            errors[name] = ["must be greater than 0 (annotation_prices_positive)"]
    if errors:
        raise ValidationError(errors)


def annotation_create(*, owner, instrument: Instrument, side: str, entry_time: datetime, entry_price: Decimal,
                      exit_time: datetime, exit_price: Decimal, notes: str = "") -> Annotation:
    """Create an annotation of ``owner`` and publish it (after commit). Times aware UTC, prices
    USD (> 0), ``side`` "long" or "short".

    Raises:
        PermissionDenied: ``owner`` holds neither the trader nor the admin role.
        django.core.exceptions.ValidationError: its ``message_dict`` names the field (exit not
            after entry, naive time, price <= 0 or too many digits, unknown side).
    """
    _check_role(owner)
    annotation = Annotation(owner=owner, instrument=instrument, side=side, entry_time=entry_time,
                            entry_price=entry_price, exit_time=exit_time, exit_price=exit_price, notes=notes)
    _check_fields(annotation)
    annotation.full_clean()
    annotation.save()
    logger.info("annotation %s created by %s", annotation.pk, owner)
    annotation_publish(event="created", annotation=annotation)
    return annotation


def annotation_update(*, annotation: Annotation, user, **fields) -> Annotation:
    """Change ``fields`` (a subset of instrument, side, entry/exit time and price, notes) and
    publish the result (after commit, to the old instrument's group too if it moved).

    Raises:
        PermissionDenied: ``user`` is not a trader/admin, or neither the owner nor staff.
        ValueError: a field that cannot be edited. ValidationError: as annotation_create.
    """
    annotation_check_change(annotation=annotation, user=user)
    unknown = sorted(set(fields) - set(_EDITABLE))
    if unknown:
        raise ValueError(f"fields {unknown} cannot be edited; editable: {list(_EDITABLE)}")
    with transaction.atomic():
        annotation = Annotation.objects.select_for_update().get(pk=annotation.pk)
        old_instrument_id = annotation.instrument_id
        for name, value in fields.items():
            setattr(annotation, name, value)
        _check_fields(annotation)
        annotation.full_clean()
        annotation.save()
        annotation_publish(event="updated", annotation=annotation, also_instrument_id=old_instrument_id)
    logger.info("annotation %s updated by %s: %s", annotation.pk, user, sorted(fields))
    return annotation


def annotation_delete(*, annotation: Annotation, user) -> None:
    """Delete ``annotation`` and publish the deletion (after commit).

    Raises PermissionDenied unless ``user`` is a trader/admin who owns it, or staff."""
    annotation_check_change(annotation=annotation, user=user)
    pk, instrument_id = annotation.pk, annotation.instrument_id
    with transaction.atomic():
        annotation.delete()
        annotation.pk = pk  # the event names the deleted row
        annotation_publish(event="deleted", annotation=annotation, also_instrument_id=instrument_id)
    logger.info("annotation %s deleted by %s", pk, user)
