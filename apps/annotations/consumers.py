"""Websocket consumer: one instrument's annotation events to the annotation pages that show it."""
from __future__ import annotations

import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.annotations.events import annotation_group

logger = logging.getLogger(__name__)


class AnnotationConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/annotations/?instrument=<id>``: authenticated users only (closed with 4401 otherwise;
    the ASGI stack refuses foreign origins before this runs).

    Client messages: ``{"subscribe": <instrument id>}`` switches the instrument. Server messages:
    ``{"type": "subscribed", "instrument": id}``, ``{"type": "error", "error": "instrument: ..."}``
    and the events of ``apps.annotations.events`` (``{"type": "annotation", "event": ...}``).
    """

    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        if query.get("instrument"):
            await self._subscribe(query["instrument"][0])

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        if isinstance(content, dict) and "subscribe" in content:
            await self._subscribe(content["subscribe"])
        else:
            await self.send_json({"type": "error", "error": "expected {\"subscribe\": <instrument id>}"})

    async def annotation_event(self, event: dict) -> None:
        await self.send_json(event["payload"])

    async def _subscribe(self, raw) -> None:
        try:
            instrument_id = int(raw)
        except (TypeError, ValueError):
            instrument_id = None
        if instrument_id is None or not await self._instrument_exists(instrument_id):
            await self.send_json({"type": "error", "error": f"instrument: no such instrument: {raw!r}"})
            return
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
        self.group = annotation_group(instrument_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send_json({"type": "subscribed", "instrument": instrument_id})

    @database_sync_to_async
    def _instrument_exists(self, instrument_id: int) -> bool:
        from apps.market.models import Instrument

        return Instrument.objects.filter(pk=instrument_id).exists()
