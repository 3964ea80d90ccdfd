"""Pushes to the dashboard's websocket group from services (Zulip's ``send_event`` pattern).

Each function takes rows, builds the message the consumer forwards
(``apps.dashboard.consumers.DashboardConsumer``) and sends it through the channel layer. A
failed push is logged, never raised: the action that caused it has already been committed.
"""
from __future__ import annotations

import json
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder

logger = logging.getLogger(__name__)
GROUP = "dashboard"  # the same group as apps.pipeline.runner.GROUP


def audit_payload(entry) -> dict:
    """An AuditLog row as the control panel shows it: {"id", "ts" (ISO 8601, UTC), "user", "action",
    "target_type", "target_id", "target" (symbol, account or model name when known), "payload",
    "account" (the trading account's id when the target is one, else None)}."""
    # Through JSON as the row stores it: Decimals and datetimes become text the channel layer can carry.
    payload = json.loads(json.dumps(entry.payload or {}, cls=DjangoJSONEncoder))
    is_account = entry.target_type == "trading.tradingaccount"
    target = payload.get("symbol") or payload.get("account") or payload.get("model_name") or _label(entry)
    return {"id": entry.pk, "ts": entry.created_at.isoformat(), "user": entry.username or "-", "action": entry.action,
            "target_type": entry.target_type, "target_id": entry.target_id, "target": str(target),
            "payload": payload, "account": int(entry.target_id) if is_account and entry.target_id.isdigit() else None}


def _label(entry) -> str:
    """An instrument target by its symbol and venue (orchestrator changes carry only the diff)."""
    if entry.target_type == "market.instrument" and entry.target_id.isdigit():
        from apps.market.models import Instrument

        row = Instrument.objects.filter(pk=int(entry.target_id)).values_list("symbol", "venue").first()
        if row is not None:
            return f"{row[0]} {row[1]}"
    return f"{entry.target_type}:{entry.target_id}" if entry.target_type else ""


def audit_publish(entry) -> None:
    """Send one AuditLog row to every open dashboard / control panel (type ``audit.entry``)."""
    try:
        async_to_sync(get_channel_layer().group_send)(GROUP, {"type": "audit.entry", "entry": audit_payload(entry)})
    except Exception:  # noqa: BLE001 - a push must not undo or fail a committed control action
        logger.exception("audit entry %s not pushed", entry.pk)
