"""Reads of annotations."""
from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from apps.annotations.models import Annotation
from apps.market.models import Instrument


def annotation_list(*, instrument: Instrument | None = None, owner=None, start: datetime | None = None,
                    end: datetime | None = None) -> QuerySet[Annotation]:
    """Annotations with ``start <= entry_time < end`` (each bound optional), oldest entry first."""
    qs = Annotation.objects.select_related("instrument", "owner")
    if instrument is not None:
        qs = qs.filter(instrument=instrument)
    if owner is not None:
        qs = qs.filter(owner=owner)
    if start is not None:
        qs = qs.filter(entry_time__gte=start)
    if end is not None:
        qs = qs.filter(entry_time__lt=end)
    return qs.order_by("entry_time", "pk")
