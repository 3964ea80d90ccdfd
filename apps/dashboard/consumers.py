"""Websocket consumer: joins the dashboard group and forwards pipeline updates to one user."""
from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

logger = logging.getLogger(__name__)
GROUP = "dashboard"


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/dashboard/``: authenticated users only; each sees only their own accounts' state."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.account_ids = await self._account_ids(user)
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def tick(self, event: dict) -> None:
        payload = dict(event["payload"])
        payload["accounts"] = {k: v for k, v in payload.get("accounts", {}).items() if k in self.account_ids}
        payload["decisions"] = [d for d in payload.get("decisions", []) if str(d.get("account")) in self.account_ids]
        await self.send_json(payload)

    async def streams_state(self, event: dict) -> None:
        """Status and counters of the live market streams (apps.market.stream_runner)."""
        await self.send_json({"type": "streams", "streams": event["streams"]})

    async def session_state(self, event: dict) -> None:
        """The replay session started, finished or failed."""
        await self.send_json({"type": "session", "session": event["session"]})

    async def training_progress(self, event: dict) -> None:
        """A training run's progress (apps.predictions.learning.ProgressReporter)."""
        await self.send_json({"type": "training", **event["training"]})

    @database_sync_to_async
    def _account_ids(self, user) -> set[str]:
        from apps.trading.models import TradingAccount

        return {str(pk) for pk in TradingAccount.objects.filter(owner=user).values_list("pk", flat=True)}
