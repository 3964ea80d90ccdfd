"""Reads that fill the dashboard when a page opens (the websocket brings what follows)."""
from __future__ import annotations

from apps.market.models import Candle, CobFrame, Instrument
from apps.predictions.models import Prediction
from apps.trading.models import Decision, Position, TradingAccount


def dashboard_history(*, user, symbol: str = "ETHUSDT", seconds: int = 300) -> dict:
    """The last ``seconds`` of 1 s candles, COB frames and decisions of the traded instrument,
    in the same shapes as the websocket updates, plus the user's positions."""
    instrument = Instrument.objects.filter(symbol=symbol, venue=Instrument.Venue.BINANCE).first()
    if instrument is None:
        return {"symbol": symbol, "candles": [], "frames": [], "decisions": [], "accounts": {}, "prediction": None}
    candles = list(Candle.objects.filter(instrument=instrument, timeframe="1s").order_by("-open_time")[:seconds])
    frames = list(CobFrame.objects.filter(instrument=instrument).order_by("-ts")[:seconds])
    accounts = TradingAccount.objects.filter(owner=user)
    decisions = Decision.objects.filter(account__in=accounts, instrument=instrument).exclude(action="HOLD")
    # The CNN's row is the one decisions link to (the live update carries the models' mean).
    prediction = Prediction.objects.filter(instrument=instrument, model_name="cnn").order_by("-ts_event").first()
    return {
        "symbol": symbol,
        "candles": [
            {"t": int(c.open_time.timestamp() * 1000), "o": float(c.open), "h": float(c.high), "l": float(c.low),
             "c": float(c.close), "v": float(c.volume)}
            for c in reversed(candles)
        ],
        "frames": [
            {"ts": int(f.ts.timestamp() * 1000), "mid": float(f.mid), "first": float(f.first_bucket_price),
             "width": float(f.bucket_width), "bid": f.bid_usd, "ask": f.ask_usd, "imbalance": f.imbalance,
             "imbalance_5": f.imbalance_5, "ma": {"1s": f.ma_1s, "5s": f.ma_5s, "15s": f.ma_15s, "60s": f.ma_60s}}
            for f in reversed(frames)
        ],
        "decisions": [
            {"ts": int(d.ts_event.timestamp() * 1000), "action": d.action, "confidence": d.confidence}
            for d in decisions.order_by("-ts_event")[:100]
        ],
        "prediction": prediction and {"status": prediction.status, "action": prediction.action,
                                      "confidence": prediction.confidence, "reason": prediction.reason,
                                      "completeness": prediction.completeness},
        "accounts": {
            str(p.account_id): {"position": str(p.quantity), "realized_pnl": float(p.realized_pnl)}
            for p in Position.objects.filter(account__in=accounts, instrument=instrument)
        },
    }
