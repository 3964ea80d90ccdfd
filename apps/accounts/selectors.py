"""Reads of the accounts app: what the account page shows about the signed-in user."""
from __future__ import annotations

import logging

from apps.accounts.models import AuditLog
from apps.accounts.roles import TRADER, role_at_least, user_role

logger = logging.getLogger(__name__)


def account_overview(*, user, audit_limit: int = 10) -> dict:
    """The user's role, what it allows, their trading accounts (never their credentials, only
    whether some are stored), their annotation count and latest audit entries.

    Returns ``{"role": "viewer"|"trader"|"admin", "can_act": bool, "groups": [str], "accounts":
    [TradingAccount] (with ``fee_pct``), "annotation_count": int, "audit": [AuditLog]}``."""
    from apps.annotations.models import Annotation
    from apps.trading.models import TradingAccount

    accounts = list(TradingAccount.objects.filter(owner=user).order_by("name")
                    .only("pk", "name", "mode", "venue", "live_enabled", "starting_balance", "fee_rate", "auto_trade",
                          "api_key_encrypted", "api_secret_encrypted", "created_at"))
    for a in accounts:
        a.fee_pct = a.fee_rate * 100  # taker fee in percent, for display
    return {
        "role": user_role(user),
        "can_act": role_at_least(user, TRADER),
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "accounts": accounts,
        "annotation_count": Annotation.objects.filter(owner=user).count(),
        "audit": list(AuditLog.objects.filter(user=user).order_by("-created_at", "-pk")[:audit_limit]),
    }
