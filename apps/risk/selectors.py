"""Reads for the risk panel of the dashboard."""
from __future__ import annotations

import json

from apps.risk.models import RiskEvent, RiskState
from apps.trading.models import OrchestratorConfig, TradingAccount


def user_can_trade(user) -> bool:
    """Staff, or a member of the "trader" group: may change live settings and the kill switch."""
    return bool(user.is_authenticated and (user.is_staff or user.groups.filter(name="trader").exists()))


def risk_panel(*, user, events: int = 10) -> dict:
    """The user's accounts with their trading state, kill switch, risk figures and latest risk
    events (rejections first among them by time), and the traded instrument's orchestrator settings."""
    accounts = list(TradingAccount.objects.filter(owner=user).order_by("pk"))
    states = {s.account_id: s for s in RiskState.objects.filter(account__in=accounts)}
    rows = []
    for a in accounts:
        s = states.get(a.pk)
        recent = RiskEvent.objects.filter(account=a).order_by("-ts_event", "-pk")[:events]
        rows.append({
            "id": a.pk, "name": a.name, "mode": a.mode,
            "state": s.state if s else "ACTIVE", "reason": s.reason if s else "",
            "kill_switch": bool(s and s.kill_switch),
            "equity": float(s.equity) if s and s.equity is not None else None,
            "drawdown": _drawdown(s), "metrics": s.metrics if s else {},
            "events": [{"ts": e.ts_event.isoformat(), "kind": e.kind, "rule": e.rule, "reason": e.reason} for e in recent],
        })
    config = OrchestratorConfig.objects.filter(instrument__is_traded=True).select_related("instrument").first()
    return {"accounts": rows, "config": config and {
        "instrument": config.instrument.symbol, "margin_bps": config.margin_bps,
        "cooldown_seconds": config.cooldown_seconds,
        "order_notional": str(config.order_notional), "max_spread_bps": config.max_spread_bps,
        "max_volatility": config.max_volatility, "min_completeness": config.min_completeness,
        "gating_mode": config.gating_mode, "manual_weights": config.manual_weights,
        "manual_weights_json": json.dumps(config.manual_weights or {})}, "can_trade": user_can_trade(user)}


def _drawdown(s: RiskState | None) -> float | None:
    if s is None or s.equity is None or not s.peak_equity:
        return None
    return float((s.peak_equity - s.equity) / s.peak_equity)
