"""Live annotation events: one channel-layer group per instrument, fed after commit by the services.

Message sent to the group ``annotations.<instrument id>`` (consumer handler ``annotation_event``)::

    {"type": "annotation.event", "payload": {"type": "annotation", "event": "created"|"updated"|"deleted",
     "id": <pk>, "instrument": <id>, "annotation": <annotation_payload(...)> | None}}

``annotation`` is None for a deletion. The consumer forwards ``payload`` unchanged.
"""
from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def annotation_group(instrument_id: int) -> str:
    """The channel-layer group of one instrument's annotation pages."""
    return f"annotations.{int(instrument_id)}"


def annotation_publish(*, event: str, annotation, also_instrument_id: int | None = None) -> None:
    """Send ``event`` about ``annotation`` to its instrument's group (and ``also_instrument_id``'s,
    when it moved) once the current transaction commits; nothing is sent on rollback.

    A channel layer that is down is logged, never raised: the write itself has succeeded."""
    from apps.annotations.selectors import annotation_payload

    data = None if event == "deleted" else annotation_payload(annotation)
    groups = {annotation.instrument_id}
    if also_instrument_id is not None:
        groups.add(also_instrument_id)
    payload = {"type": "annotation", "event": event, "id": annotation.pk, "instrument": annotation.instrument_id,
               "annotation": data}

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        for instrument_id in sorted(groups):
            try:
                async_to_sync(layer.group_send)(annotation_group(instrument_id),
                                                {"type": "annotation.event", "payload": payload})
            except Exception:  # the broadcast is best effort; the row is stored
                logger.exception("annotation %s: could not publish %s", annotation.pk, event)

    transaction.on_commit(send)
