"""The dashboard payload: the update published for every second (the dashboard's ``tick``;
``apps.dashboard`` reads it) and the run summary the replay command prints."""
from __future__ import annotations

import logging
from decimal import Decimal

from apps.market.convert import ms_to_datetime, to_decimal
from apps.market.models import Instrument
from apps.pipeline.stages.counters import InstrumentCounters
from apps.pipeline.stages.market import PERIOD_MS, MarketStep
from apps.pipeline.stages.trading import Trading
from apps.predictions.inference import InferenceResult
from apps.trading.desk import AccountDesk
from ml.market.events import Candle as CandleEvent
from ml.models.output import ModelOutput
from ml.risk.metrics import summary as risk_metrics_summary

logger = logging.getLogger(__name__)


class Dashboard:
    """Builds the per-second update and the summary from the other stages' public state."""

    def __init__(self, *, market: MarketStep, trading: Trading, traded: Instrument,
                 counters: dict[str, InstrumentCounters]) -> None:
        self.market, self.trading, self.traded, self.counters = market, trading, traded, counters
        self.pivot_cache: dict[str, tuple[int, dict]] = {}  # timeframe -> (period open ms, levels)
        self.fills_published: dict[int, int] = {}  # account id -> fills already sent to the dashboard

    def tick(self, second, trading: dict, mid: float | None) -> dict:
        """The update for ``second`` (a ``SecondResult``), with ``trading`` ({"prediction",
        "completeness", "decisions"}) and the traded mid (USD, None without a book).

        Shape: {"type": "tick", "ts" (ms), "symbol", "instruments": {symbol: {"candle", "frame",
        "gaps"}}, "pivots": {"1m" | "1h" | "1d": {"t" (ms, open of the period the levels apply to), "p",
        "r1", "r2", "s1", "s2"} | None}, "prediction" (with "accuracy": {model: [accuracy | None, scored
        calls]} when models ran), "completeness", "decisions", "accounts": {account id:
        :meth:`account` + "new_fills"}}."""
        update = {"type": "tick", "ts": second.ts, "symbol": self.traded.symbol, "instruments": {}}
        for symbol in self.market.instruments:
            candle, frame = second.candles.get(symbol), second.frames.get(symbol)
            update["instruments"][symbol] = {
                "candle": _candle_payload(candle) if candle else None,
                "frame": _frame_payload(frame) if frame else None,
                "gaps": self.counters[symbol].sequence_gaps,
            }
        update["pivots"] = self._pivots(second.ts) if self.traded.symbol in self.market.rings else {}
        update.update(trading)
        prediction = update.get("prediction")
        if prediction and prediction.get("models") and self.trading.desk is not None:
            accuracy = {n: list(self.trading.desk.scorer.accuracy(n)) for n in prediction["models"]}
            update["prediction"] = {**prediction, "accuracy": accuracy}
        update["accounts"] = {str(pk): {**self.account(desk, mid), "new_fills": self._new_fills(desk)}
                              for pk, desk in self.trading.desks.items()}
        return update

    def account(self, desk: AccountDesk, mid: float | None) -> dict:
        """One account's state: position (base units, text), average price, PnL and equity (USD, equity
        as of the last risk cycle), order / fill counts, open paper orders
        [{"id", "side", "type", "quantity", "remaining", "price" (None for MARKET)}], risk state."""
        p = desk.position
        unrealized = p.unrealized_pnl(to_decimal(mid)) if mid else Decimal(0)
        equity = desk.equity_curve[-1] if desk.equity_curve else float(desk.account.starting_balance + p.realized_pnl)
        matcher = getattr(desk.client, "matcher", None)  # paper only: a live venue's orders are its own
        open_orders = [{"id": o.client_order_id, "side": o.side, "type": o.order_type, "quantity": round(o.quantity, 8),
                        "remaining": round(o.remaining, 8), "price": o.price}
                       for o in (matcher.open_orders() if matcher is not None else ())]
        return {"position": str(p.quantity), "average_price": str(p.average_price.quantize(Decimal("0.01"))),
                "realized_pnl": float(p.realized_pnl), "unrealized_pnl": float(unrealized),
                "pnl": float(p.realized_pnl + unrealized), "equity": round(float(equity), 2),
                "orders": desk.orders, "fills": desk.fills, "open_orders": open_orders,
                "risk_state": desk.risk.state.value, "kill_switch": desk.risk_row.kill_switch}

    def summary(self, *, first_ts: int | None, last_ts: int | None, mid: float | None) -> dict:
        """Counts of the run per instrument and per account ("owner/name": :meth:`account` +
        "rejections", "risk_metrics"), and its start and end (ISO 8601, UTC)."""
        instruments = {}
        for symbol, c in self.counters.items():
            instruments[symbol] = {
                "candles_1s": c.candles_1s, "cob_frames": c.cob_frames, "predictions": c.predictions,
                "skipped_inferences": c.skipped_inferences, "decisions": c.decisions,
                "model_predictions": dict(sorted(c.model_predictions.items())), "history_errors": c.history_errors,
                "inference_failures": c.inference_failures,
                "sequence_gaps": c.sequence_gaps,
                "mean_completeness": round(c.completeness_sum / c.completeness_n, 4) if c.completeness_n else None,
            }
        accounts = {}
        for desk in self.trading.desks.values():
            payload = self.account(desk, mid)
            payload["rejections"] = desk.rejections
            curve = risk_metrics_summary(desk.equity_curve, 1.0) if len(desk.equity_curve) >= 2 else {}
            payload["risk_metrics"] = {k: v if v is None else round(v, 6) for k, v in curve.items()}
            accounts[f"{desk.account.owner}/{desk.account.name}"] = payload
        return {"instruments": instruments, "accounts": accounts,
                "start": first_ts and ms_to_datetime(first_ts).isoformat(),
                "end": last_ts and ms_to_datetime(last_ts).isoformat()}

    def _pivots(self, ts: int) -> dict:
        """Floor pivots (ml.features.pivots) in force at ``ts`` for 1m, 1h and 1d, from the traded
        instrument's candle of the previous period when the ring holds it (else None). Computed once
        per period (a backtest steps through many seconds of the same minute)."""
        from ml.features.pivots import floor_pivots

        cache = self.pivot_cache
        out: dict[str, dict | None] = {}
        for timeframe, period in PERIOD_MS.items():
            if timeframe == "1s":
                continue  # the 1 s chart draws the minute's levels
            current = ts - ts % period
            if timeframe in cache and cache[timeframe][0] == current:
                out[timeframe] = cache[timeframe][1]
                continue
            values, present = self.market.rings[self.traded.symbol][timeframe].window(current - period, 1)
            out[timeframe] = None
            if present[0]:
                _, high, low, close, _ = (float(v) for v in values[0])
                try:
                    out[timeframe] = {"t": current, **floor_pivots(high, low, close).as_dict()}
                except ValueError as exc:
                    logger.warning("%s pivots at %d not computed: %s", timeframe, ts, exc)
            if out[timeframe] is not None:  # a period whose candle is not there yet is tried again
                cache[timeframe] = (current, out[timeframe])
        return out

    def _new_fills(self, desk: AccountDesk) -> list[dict]:
        """The account's fills since the previous update, read only when its fill count moved:
        [{"ts" ms, "side", "price" USD, "quantity" base units, "fee" USD}], oldest first (at most 20)."""
        from apps.trading.models import Fill

        seen = self.fills_published.get(desk.account.pk, 0)
        if desk.fills <= seen:
            return []
        self.fills_published[desk.account.pk] = desk.fills
        rows = (Fill.objects.filter(order__account=desk.account, order__instrument=self.traded)
                .select_related("order").order_by("-ts_event", "-pk")[:min(desk.fills - seen, 20)])
        return [{"ts": int(f.ts_event.timestamp() * 1000), "side": f.order.side, "price": float(f.price),
                 "quantity": float(f.quantity), "fee": float(f.fee)} for f in reversed(rows)]


def skipped_payload(result: InferenceResult, completeness: dict[str, float]) -> dict:
    """The trading part of a second on which no model predicted (the reason of the first skip)."""
    reason = next(iter(result.skipped.values()), "no enabled model")
    prediction = {"status": "skipped", "action": "", "confidence": None, "reason": reason,
                  "probs": {"BUY": None, "SELL": None, "HOLD": None}, "models": {}}
    return {"prediction": prediction, "completeness": completeness, "decisions": []}


def predicted_payload(result: InferenceResult, output: ModelOutput, gating: dict, completeness: dict[str, float],
                      decisions: list[dict]) -> dict:
    """The trading part of a second on which models predicted: the combined output, the gating,
    each model's output and one decision payload per account."""
    prediction = {"status": "predicted", "action": output.action, "confidence": output.confidence, "reason": "",
                  "probs": dict(output.probs), "predicted_returns": dict(output.predicted_returns),
                  "gating": {"mode": gating["mode"], "weights": gating["weights"]},
                  "models": {n: {"action": o.action, "confidence": o.confidence, "probs": dict(o.probs)}
                             for n, o in result.outputs.items()}}
    return {"prediction": prediction, "completeness": completeness, "decisions": decisions}


def _candle_payload(c: CandleEvent) -> dict:
    return {"t": c.open_time, "o": c.open, "h": c.high, "l": c.low, "c": c.close, "v": round(c.volume, 6)}


def _frame_payload(f) -> dict:
    return {"ts": f.ts, "mid": f.mid, "first": f.first_bucket_price, "width": f.bucket_width,
            "bid": [round(float(v), 2) for v in f.bid_usd], "ask": [round(float(v), 2) for v in f.ask_usd],
            "imbalance": [round(float(v), 4) for v in f.imbalance], "imbalance_5": round(f.imbalance_5, 4),
            "ma": {k: round(v, 4) for k, v in f.imbalance_ma.items()}}
