"""Reads that fill the dashboard and the control panel when a page opens (the websocket brings what follows)."""
from __future__ import annotations

from apps.accounts.models import AuditLog
from apps.accounts.roles import ADMIN, TRADER, role_at_least, user_role
from apps.market.convert import ms_to_datetime
from apps.market.models import Candle, CobFrame, Instrument
from apps.predictions.models import ModelSetting, Prediction
from apps.risk.models import RiskState
from apps.trading.models import (
    MARGIN_BPS_MAX,
    MARGIN_BPS_MIN,
    Decision,
    Fill,
    OrchestratorConfig,
    Order,
    Position,
    TradingAccount,
)
from ml.features.pivots import floor_pivot_series

TIMEFRAMES = ("1s", "1m", "1h", "1d")
CANDLES_SHOWN = {"1m": 240, "1h": 240, "1d": 120}  # 1s: the ``seconds`` argument
OPEN_STATUSES = (Order.Status.NEW, Order.Status.PARTIALLY_FILLED)


def dashboard_history(*, user, symbol: str = "ETHUSDT", seconds: int = 300, timeframe: str = "1s") -> dict:
    """What the dashboard draws before the first update, in the websocket updates' shapes.

    Returns {"symbol", "timeframe", "candles": [{"t" ms, "o", "h", "l", "c", "v", "pv": floor pivots
    in force during the candle (ml.features.pivots) | None}] (the last ``seconds`` 1 s candles, or the
    last CANDLES_SHOWN of a longer timeframe), "frames": the last ``seconds`` COB frames (1 s),
    "decisions": the user's BUY / SELL decisions in the candles' span with their order, "fills": the
    user's fills in that span [{"ts", "side", "price", "quantity"}], "prediction": the CNN's latest
    row, "models": {model: {"action", "confidence", "probs"}} (latest row each), "gating": the last
    decision's {"mode", "weights", "why": {model: reason for its weight}, "scores", "accuracy"} or None,
    "accounts": {id: position, PnL, equity,
    open orders}, "pivots": floor pivots in force at the last candle per timeframe above 1 s (the
    updates' "pivots" shape)}. Raises ValueError for an unknown timeframe."""
    if timeframe not in TIMEFRAMES:
        raise ValueError(f"timeframe: expected one of {', '.join(TIMEFRAMES)}, got {timeframe!r}")
    instrument = Instrument.objects.filter(symbol=symbol, venue=Instrument.Venue.BINANCE).first()
    empty = {"symbol": symbol, "timeframe": timeframe, "candles": [], "frames": [], "decisions": [], "fills": [],
             "accounts": {}, "prediction": None, "models": {}, "gating": None}
    if instrument is None:
        return empty
    limit = seconds if timeframe == "1s" else CANDLES_SHOWN[timeframe]
    candles = list(reversed(Candle.objects.filter(instrument=instrument, timeframe=timeframe).order_by("-open_time")[:limit]))
    frames = list(reversed(CobFrame.objects.filter(instrument=instrument).order_by("-ts")[:seconds]))
    accounts = TradingAccount.objects.filter(owner=user)
    pivots = floor_pivot_series([(float(c.high), float(c.low), float(c.close)) for c in candles])
    start = candles[0].open_time if candles else None
    decisions = Decision.objects.filter(account__in=accounts, instrument=instrument).exclude(action="HOLD")
    fills = Fill.objects.filter(order__account__in=accounts, order__instrument=instrument).select_related("order")
    if start is not None:
        decisions, fills = decisions.filter(ts_event__gte=start), fills.filter(ts_event__gte=start)
    latest = Decision.objects.filter(account__in=accounts, instrument=instrument).order_by("-ts_event").first()
    return {
        **empty,
        "candles": [{**_candle(c), "pv": pv} for c, pv in zip(candles, pivots, strict=True)],
        "frames": [_frame(f) for f in frames],
        "decisions": [_decision(d) for d in decisions.prefetch_related("order_set").order_by("-ts_event")[:200]][::-1],
        "fills": [{"ts": _ms(f.ts_event), "side": f.order.side, "price": float(f.price), "quantity": float(f.quantity)}
                  for f in fills.order_by("-ts_event")[:200]][::-1],
        "prediction": _prediction(Prediction.objects.filter(instrument=instrument, model_name="cnn", shadow=False)
                                  .order_by("-ts_event").first()),
        "models": _latest_models(instrument),
        "gating": latest and (latest.inputs or {}).get("gating"),
        "accounts": _accounts(accounts, instrument),
        "pivots": _pivots_at(instrument, _ms(candles[-1].open_time)) if candles else {},
    }


def _pivots_at(instrument: Instrument, ts: int) -> dict:
    """The floor pivots in force at ``ts`` (ms) per timeframe above 1 s, in the updates' shape
    {timeframe: {"t": open of the period they apply to, "p", "r1", "r2", "s1", "s2"}} (from the
    stored candle of the previous period; a timeframe without it is left out)."""
    from ml.features.pivots import floor_pivots

    out = {}
    for timeframe, period in (("1m", 60_000), ("1h", 3_600_000), ("1d", 86_400_000)):
        current = ts - ts % period
        c = Candle.objects.filter(instrument=instrument, timeframe=timeframe,
                                  open_time=ms_to_datetime(current - period)).first()
        if c is not None:
            try:
                out[timeframe] = {"t": current, **floor_pivots(float(c.high), float(c.low), float(c.close)).as_dict()}
            except ValueError:
                continue  # an impossible stored candle: no levels rather than wrong ones
    return out


def _ms(dt) -> int:
    return int(dt.timestamp() * 1000)


def _candle(c: Candle) -> dict:
    return {"t": _ms(c.open_time), "o": float(c.open), "h": float(c.high), "l": float(c.low), "c": float(c.close),
            "v": float(c.volume)}


def _frame(f: CobFrame) -> dict:
    return {"ts": _ms(f.ts), "mid": float(f.mid), "first": float(f.first_bucket_price), "width": float(f.bucket_width),
            "bid": f.bid_usd, "ask": f.ask_usd, "imbalance": f.imbalance, "imbalance_5": f.imbalance_5,
            "ma": {"1s": f.ma_1s, "5s": f.ma_5s, "15s": f.ma_15s, "60s": f.ma_60s}}


def _decision(d: Decision) -> dict:
    """A decision in the updates' shape: the edge and margin in bps (``Decision.confidence`` and
    ``threshold`` store them), its reason and order."""
    order = next(iter(d.order_set.all()), None)
    return {"ts": _ms(d.ts_event), "action": d.action, "confidence": d.confidence, "edge_bps": d.confidence,
            "margin_bps": d.threshold, "reason": d.reason, "order": order and {
        "side": order.side, "quantity": str(order.quantity), "status": order.status,
        "price": str(order.average_price or ""), "reason": order.reject_reason}}


def _prediction(p: Prediction | None) -> dict | None:
    return p and {"status": p.status, "action": p.action, "confidence": p.confidence, "reason": p.reason,
                  "completeness": p.completeness,
                  "probs": {"BUY": p.prob_buy, "SELL": p.prob_sell, "HOLD": p.prob_hold}}


def _latest_models(instrument: Instrument) -> dict:
    from ml.models.specs import MODEL_NAMES

    out = {}
    for name in MODEL_NAMES:  # one indexed query each: also on SQLite (no DISTINCT ON)
        p = (Prediction.objects.filter(instrument=instrument, model_name=name, status=Prediction.Status.PREDICTED,
                                       shadow=False).defer("input_package").order_by("-ts_event").first())
        if p is not None:
            out[name] = {"action": p.action, "confidence": p.confidence,
                         "probs": {"BUY": p.prob_buy, "SELL": p.prob_sell, "HOLD": p.prob_hold}}
    return out


def _accounts(accounts, instrument: Instrument) -> dict:
    """Per account: position, PnL and equity (RiskState, as of the last stored risk cycle) and open orders."""
    positions = {p.account_id: p for p in Position.objects.filter(account__in=accounts, instrument=instrument)}
    states = {s.account_id: s for s in RiskState.objects.filter(account__in=accounts)}
    open_orders: dict[int, list] = {}
    for o in Order.objects.filter(account__in=accounts, instrument=instrument, status__in=OPEN_STATUSES):
        open_orders.setdefault(o.account_id, []).append({
            "id": o.client_order_id, "side": o.side, "type": o.order_type, "quantity": float(o.quantity),
            "remaining": float(o.quantity - o.filled_quantity), "price": float(o.price) if o.price is not None else None})
    out = {}
    for a in accounts:
        p, s = positions.get(a.pk), states.get(a.pk)
        realized = float(p.realized_pnl) if p else 0.0
        out[str(a.pk)] = {
            "name": a.name, "position": str(p.quantity) if p else "0", "average_price": str(p.average_price) if p else "0",
            "realized_pnl": realized, "pnl": realized,
            "equity": float(s.equity) if s and s.equity is not None else float(a.starting_balance) + realized,
            "open_orders": open_orders.get(a.pk, []), "kill_switch": bool(s and s.kill_switch),
            "risk_state": s.state if s else "ACTIVE"}
    return out


def checkpoint_ranking(*, per_model: int = 5) -> list[dict]:
    """The checkpoints panel (``apps.predictions.selectors.checkpoint_panel``: ranked by net edge per
    trade, with state live / shadow / retired and the promotion evidence), for the page and the
    websocket push after a training run."""
    from apps.predictions.selectors import checkpoint_panel

    return checkpoint_panel(per_model=per_model)


def control_panel(*, user, audit: int = 30) -> dict:
    """The control panel's state for ``user``: {"role", "can_trade", "can_admin", "instruments": [{"id",
    "symbol", "venue", "is_traded", "stream": {"desired", "status"} | None, "config": {"trading_enabled",
    "margin_bps"} | None}], "margin_min", "margin_max" (the margin's bounds,
    bps), "models": [{"name", "enabled"}], "accounts": the user's
    (an admin's: all) [{"id", "name", "owner", "mode", "kill_switch"}], "audit": the newest ``audit``
    entries the user may see (apps.dashboard.events.audit_payload)}."""
    from apps.dashboard.events import audit_payload
    from ml.models.specs import MODEL_NAMES

    is_admin = user_role(user) == ADMIN
    configs = {c.instrument_id: c for c in OrchestratorConfig.objects.all()}
    instruments = []
    for i in Instrument.objects.filter(enabled=True).select_related("stream").order_by("-is_traded", "venue", "symbol"):
        stream = getattr(i, "stream", None)
        config = configs.get(i.pk)
        instruments.append({
            "id": i.pk, "symbol": i.symbol, "venue": i.venue, "is_traded": i.is_traded,
            "stream": stream and {"desired": stream.desired, "status": stream.status},
            "config": (config or i.is_traded or None) and {
                "trading_enabled": config.trading_enabled if config else True,
                "margin_bps": config.margin_bps if config else OrchestratorConfig().margin_bps}})
    disabled = set(ModelSetting.objects.filter(enabled=False).values_list("model_name", flat=True))
    accounts = TradingAccount.objects.select_related("owner").order_by("pk")
    if not is_admin:
        accounts = accounts.filter(owner=user)
    kill = dict(RiskState.objects.filter(account__in=accounts).values_list("account_id", "kill_switch"))
    own = {str(pk) for pk in TradingAccount.objects.filter(owner=user).values_list("pk", flat=True)}
    entries = [audit_payload(e) for e in AuditLog.objects.order_by("-created_at", "-pk")[:audit * 3]]
    visible = [e for e in entries if is_admin or e["account"] is None or str(e["account"]) in own][:audit]
    return {
        "role": user_role(user), "can_trade": role_at_least(user, TRADER), "can_admin": is_admin,
        "instruments": instruments, "margin_min": MARGIN_BPS_MIN, "margin_max": MARGIN_BPS_MAX,
        "models": [{"name": n, "enabled": n not in disabled} for n in MODEL_NAMES],
        "accounts": [{"id": a.pk, "name": a.name, "owner": a.owner.get_username(), "mode": a.mode,
                      "kill_switch": bool(kill.get(a.pk))} for a in accounts],
        "audit": visible,
    }


def risk_limits(*, user) -> dict[int, dict]:
    """The risk limits of the user's accounts on the traded instrument, for the risk card:
    {account id: {"max_position" (base units), "max_order_notional" (USD), "max_orders_per_minute",
    "daily_loss_limit" (USD), "max_drawdown", "stop_loss", "take_profit", "trailing_stop" (fractions,
    None when off), "sizing"}}. An account without a RiskLimit row shows the model's defaults (the
    engine creates the row with them when it first trades)."""
    from apps.risk.models import RiskLimit

    instrument = Instrument.objects.filter(is_traded=True, enabled=True, venue=Instrument.Venue.BINANCE).first()
    accounts = list(TradingAccount.objects.filter(owner=user).order_by("pk"))
    rows = {r.account_id: r for r in RiskLimit.objects.filter(account__in=accounts, instrument=instrument)}
    out = {}
    for a in accounts:
        r = rows.get(a.pk) or RiskLimit()
        out[a.pk] = {"max_position": float(r.max_position), "max_order_notional": float(r.max_order_notional),
                     "max_orders_per_minute": r.max_orders_per_minute, "daily_loss_limit": float(r.daily_loss_limit),
                     "max_drawdown": r.max_drawdown, "stop_loss": r.stop_loss, "take_profit": r.take_profit,
                     "trailing_stop": r.trailing_stop, "sizing": r.sizing}
    return out
