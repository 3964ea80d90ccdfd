"""Websocket consumer: joins the dashboard group and forwards pipeline updates to one user."""
from __future__ import annotations

import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

logger = logging.getLogger(__name__)
GROUP = "dashboard"
_last_public: list = [None, ""]  # this process's last (public part of a tick, its JSON)


def _public_json(public: dict) -> str:
    """JSON of a tick's public part, reused by every consumer of the process while the tick is the
    same (a dict comparison costs a fraction of encoding ~2 kB again for each of hundreds of clients)."""
    if _last_public[0] is not None and _last_public[0] == public:
        return _last_public[1]
    text = json.dumps(public)
    _last_public[:] = [public, text]
    return text


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    """``/ws/dashboard/``: authenticated users only (close code 4401 otherwise; a foreign Origin is
    refused before this by gogo.asgi's AllowedHostsOriginValidator); each sees only their own
    accounts' state. Sends JSON messages of type tick, streams, session, training and audit."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.account_ids, self.is_admin = await self._access(user)
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def tick(self, event: dict) -> None:
        """The engine's update (apps.pipeline.stages.dashboard.Dashboard.tick) with only this user's accounts
        and decisions. The rest is the same for every dashboard: encoded once per process and tick."""
        payload = event["payload"]
        private = {"accounts": {k: v for k, v in payload.get("accounts", {}).items() if k in self.account_ids},
                   "decisions": [d for d in payload.get("decisions", []) if str(d.get("account")) in self.account_ids]}
        public = {k: v for k, v in payload.items() if k not in private}
        await self.send(text_data=json.dumps(private)[:-1] + ", " + _public_json(public)[1:] if public
                        else json.dumps(private))

    async def streams_state(self, event: dict) -> None:
        """Status and counters of the live market streams (apps.pipeline.stream_runner)."""
        await self.send_json({"type": "streams", "streams": event["streams"]})

    async def session_state(self, event: dict) -> None:
        """The replay session started, finished or failed."""
        await self.send_json({"type": "session", "session": event["session"]})

    async def training_progress(self, event: dict) -> None:
        """A training run's progress (apps.predictions.learning.ProgressReporter). When the run has
        ended (any state but "running"), the checkpoint ranking follows as a "checkpoints" message:
        a new checkpoint may have been registered, pruned or made live."""
        await self.send_json({"type": "training", **event["training"]})
        if event["training"].get("state") != "running":
            await self.send_json({"type": "checkpoints", "checkpoints": await self._checkpoints()})

    @database_sync_to_async
    def _checkpoints(self) -> list[dict]:
        from apps.dashboard.selectors import checkpoint_ranking

        ranking = checkpoint_ranking()
        for model in ranking:
            for row in model["rows"]:
                row["created_at"] = row["created_at"].isoformat() if row["created_at"] else None
        return ranking

    async def audit_entry(self, event: dict) -> None:
        """A control action was audited (apps.dashboard.events.audit_publish). An action on a trading
        account reaches only its owner and admins."""
        entry = event["entry"]
        if entry.get("account") is not None and not self.is_admin and str(entry["account"]) not in self.account_ids:
            return
        await self.send_json({"type": "audit", "entry": entry})

    @database_sync_to_async
    def _access(self, user) -> tuple[set[str], bool]:
        """The user's own trading account ids (text) and whether they hold the admin role."""
        from apps.accounts.roles import ADMIN, user_role
        from apps.trading.models import TradingAccount

        ids = {str(pk) for pk in TradingAccount.objects.filter(owner=user).values_list("pk", flat=True)}
        return ids, user_role(user) == ADMIN
