"""The main job, one exchange second at a time: market data -> COB/candles -> BaseDataInput ->
every enabled model (CNN, DQN, transformer) -> decision -> risk -> paper fills, everything
persisted, and one update per second to publish.

Inference: below the completeness gate (GOGO_MIN_COMPLETENESS, overall) no model runs and each
enabled model stores a skipped prediction; above it each model runs (or is skipped when its own
components are thin) and stores its prediction with its input package. The trading desk
(``apps.trading.desk``) combines the models that predicted this second in a mixture of experts
weighted by their recent scored accuracy, then runs risk, stops, the decision and execution for
every account; the decision links to the CNN's prediction when there is one. Every model's
output of this second is fed to all models at the next second through ``BaseDataInput.last_outputs``. Counters:
``predictions`` / ``skipped_inferences`` count seconds (with / without a combined output);
``model_predictions`` counts per model; ``history_errors`` counts failed history writes.

The same engine runs behind the headless ``replay`` command, the Celery ``ingest`` worker and the
embedded web server; only the driver (pacing, publishing) differs (see ``apps.pipeline.runner``).
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import torch
from django.conf import settings
from django.db import transaction

from apps.market import selectors as market_selectors
from apps.market import services as market_services
from apps.market.convert import ms_to_datetime, to_decimal
from apps.market.models import DataGap, Instrument
from apps.predictions import inference as prediction_inference
from apps.predictions import services as prediction_services
from apps.predictions.models import Prediction
from apps.trading import services as trading_services
from apps.trading.desk import AccountDesk, TradingDesk
from apps.trading.models import TradingAccount
from ml.features.base_input import build_base_data_input
from ml.features.rings import CandleRing, FrameRing
from ml.market.events import Candle as CandleEvent
from ml.market.replay import ReplayVenue
from ml.market.session import InstrumentSpec, MarketSession, SecondResult
from ml.orchestrator import MarketConditions, realized_volatility
from ml.risk.metrics import summary as risk_metrics_summary

logger = logging.getLogger(__name__)

PERIOD_MS = {"1s": 1_000, "1m": 60_000, "1h": 3_600_000, "1d": 86_400_000}
ROLLUP = (("1s", "1m", 60), ("1m", "1h", 60), ("1h", "1d", 24))
RING_CAPACITY = 600


@dataclass
class InstrumentCounters:
    candles_1s: int = 0
    cob_frames: int = 0
    predictions: int = 0
    skipped_inferences: int = 0
    decisions: int = 0
    sequence_gaps: int = 0
    inference_failures: int = 0
    completeness_sum: float = 0.0
    completeness_n: int = 0
    model_predictions: dict[str, int] = field(default_factory=dict)
    history_errors: int = 0
    stream_gaps: int = 0
    candles_backfilled: int = 0


AccountBook = AccountDesk  # in-memory trading state of one account during a session (apps.trading.desk)


@dataclass
class _Buffers:
    candles: dict[str, list[CandleEvent]] = field(default_factory=dict)
    frames: dict[str, list] = field(default_factory=dict)


class Engine:
    """Drives one session over recorded streams or a live venue (see module docstring).

    Give either ``recordings`` (symbol -> ordered files of one stream; a replay) or ``venue`` (an
    ``apps.market.venues.live.LiveVenue``: its symbols, venue and sync rule are used; the session
    runs until the venue is closed). With a live venue, 1m/1h/1d candles are backfilled through its
    REST client at the first second, and the 1 s candles of every stream gap are backfilled when
    the session reports the gap (``SecondResult.gaps``), never interpolated.
    ``replay_venue``: an already loaded ``ReplayVenue`` over exactly ``recordings`` (no re-read).
    Raises ValueError when both or neither are given, when a symbol is not a configured, enabled
    Instrument, or when no traded instrument is among them.
    """

    def __init__(self, *, recordings: dict[str, list[Path]] | None = None, venue=None, sync_rule: str = "spot",
                 drop_deltas: dict[str, set[int]] | None = None, accounts: list[TradingAccount] | None = None,
                 flush_every: int = 1, store_inputs: bool = True, replay_venue: ReplayVenue | None = None) -> None:
        if (recordings is None) == (venue is None):
            raise ValueError("give either recordings= (replay) or venue= (live)")
        if venue is not None:
            sync_rule, venue_name, symbols = venue.sync_rule, venue.venue, list(venue.symbols)
        else:
            venue_name = Instrument.Venue.BINANCE_USDM if sync_rule == "futures" else Instrument.Venue.BINANCE
            symbols = list(recordings)
        self.instruments = self._instruments(symbols, venue_name)
        self.traded = next(i for i in self.instruments.values() if i.is_traded)
        self.reference = next((i for i in self.instruments.values() if not i.is_traded), self.traded)
        if venue is not None:
            self.venue = venue
        else:  # a backtest may hand over the recordings already parsed (ml.backtest.replay_cache)
            self.venue = replay_venue or ReplayVenue(recordings, drop_deltas=drop_deltas)
        self.rest = getattr(venue, "rest", None)  # live: REST backfills through the venue's client
        self._pivot_cache: dict[str, tuple[int, dict]] = {}  # timeframe -> (period open ms, levels)
        self._fills_published: dict[int, int] = {}  # account id -> fills already sent to the dashboard
        specs = [InstrumentSpec(s, float(i.bucket_width), i.bucket_count, sync_rule, tick_size=float(i.tick_size))
                 for s, i in self.instruments.items()]
        self.session = MarketSession(self.venue, specs, close_delay_ms=getattr(venue, "close_delay_ms", 0))
        # Workers mode runs the models on the ``inference`` queue; embedded runs them here.
        self.inference_in_worker = settings.GOGO_INFERENCE_IN_WORKER
        self.models = {} if self.inference_in_worker else prediction_services.models_load_enabled()
        # Batch-1 inference of small models: one intra-op thread is as fast when the machine is idle
        # and several times faster when other processes compete for the 2 cores (spinning OpenMP threads).
        torch.set_num_threads(settings.GOGO_INFERENCE_THREADS)
        self.config = trading_services.orchestrator_config_get(instrument=self.traded)
        self.accounts = accounts if accounts is not None else list(TradingAccount.objects.filter(auto_trade=True))
        self.flush_every = max(1, flush_every)
        self.store_inputs = store_inputs
        self.counters = {s: InstrumentCounters() for s in self.instruments}
        self.books: dict[int, AccountBook] = {}
        self.rings: dict[str, dict[str, CandleRing]] = {}
        self.frame_rings: dict[str, FrameRing] = {s: FrameRing(capacity=RING_CAPACITY) for s in self.instruments}
        self.recent: dict[str, dict[str, deque]] = {}
        self.last_outputs: dict = {}
        self._buffers = _Buffers()
        self._gaps_seen = {s: 0 for s in self.instruments}
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.last_mid: float | None = None
        # Backtest/test hook: BaseDataInput -> BaseDataInput applied before inference (None live).
        self.input_hook = None

    @staticmethod
    def _instruments(symbols: list[str], venue: str) -> dict[str, Instrument]:
        rows = Instrument.objects.filter(venue=venue, symbol__in=list(symbols), enabled=True)
        found = {i.symbol: i for i in rows}
        missing = sorted(set(symbols) - set(found))
        if missing:
            raise ValueError(f"no enabled {venue} instrument configured for {', '.join(missing)}")
        if not any(i.is_traded for i in found.values()):
            raise ValueError("none of the replayed instruments is marked as traded")
        return found

    def run(self) -> Iterator[dict]:
        """Process every exchange second of the recording; yields one update dict per second."""
        for second in self.session.seconds():
            if self.first_ts is None:
                self._start(second.ts)
            update = self.step(second)
            self.last_ts = second.ts
            yield update
        self.flush()
        if self.last_ts is not None:
            self.desk.close(now_ms=self.last_ts)

    def _start(self, ts: int) -> None:
        self.first_ts = ts
        if self.rest is not None:
            self._backfill_on_start(ts)
        for symbol, instrument in self.instruments.items():
            self.rings[symbol] = {}
            self.recent[symbol] = {}
            for timeframe, period in PERIOD_MS.items():
                ring = CandleRing(timeframe, capacity=RING_CAPACITY)
                # Only candles fully closed before the session starts: no future data.
                closed = market_selectors.candle_list(instrument=instrument, timeframe=timeframe,
                                                      end=ms_to_datetime(ts - period + 1), limit=RING_CAPACITY)
                ring.extend(closed)
                self.rings[symbol][timeframe] = ring
                self.recent[symbol][timeframe] = deque(closed[-60:], maxlen=60)
        self.desk = TradingDesk(instrument=self.traded, config=self.config)
        for account in self.accounts:
            state = trading_services.position_as_of(account=account, instrument=self.traded, before_ms=ts)
            desk = self.desk.open_account(account=account, position=state, start_ms=ts)
            if desk is not None:
                self.books[account.pk] = desk

    def step(self, second: SecondResult) -> dict:
        """Process one closed exchange second (see module docstring); returns the update to publish."""
        for symbol in self.instruments:
            self._market(symbol, second)
        self._record_gaps(second.ts)
        # The inference workers read this second's candles and frames from the database.
        if self.inference_in_worker or (second.ts // 1000) % self.flush_every == 0:
            self.flush()
        with transaction.atomic():
            trading = self._infer_and_trade(second)
        return self._update(second, trading)

    def _backfill_on_start(self, ts: int) -> None:
        """Live: the last RING_CAPACITY closed 1m/1h/1d candles through REST (a venue error is logged,
        the session goes on with what is stored)."""
        from apps.market.backfill import candle_backfill_on_start
        from apps.market.venues.ccxt_rest import VenueError

        for instrument in self.instruments.values():
            if not instrument.stream_candles:
                continue
            try:
                candle_backfill_on_start(instrument=instrument, now_ms=ts, count=RING_CAPACITY, rest=self.rest)
            except VenueError as exc:
                logger.error("%s: start-up candle backfill failed: %s", instrument, exc)

    def _backfill_gap(self, symbol: str, gap) -> None:
        """A stream gap's 1 s candles (``[gap.from_ms, gap.to_ms)``) through REST into the store and the rings,
        before this second's rollup; a hole the venue cannot fill stays a DataGap (never interpolated)."""
        from apps.market.backfill import candle_backfill
        from apps.market.venues.ccxt_rest import VenueError

        instrument = self.instruments[symbol]
        cause = DataGap.Cause.MISSING_CANDLES if gap.cause == "connect" else DataGap.Cause.DISCONNECT
        self.counters[symbol].stream_gaps += 1
        if self.rest is None:
            market_services.data_gap_upsert(instrument=instrument, cause=cause, ts_event_ms=gap.from_ms,
                                            ts_end_ms=gap.to_ms, detail=f"stream gap ({gap.cause}); no REST client")
            return
        try:
            candle_backfill(instrument=instrument, timeframe="1s", start_ms=gap.from_ms, end_ms=gap.to_ms, rest=self.rest,
                            cause=cause, detail=f"after stream gap ({gap.cause})")
        except VenueError as exc:
            logger.error("%s: 1s backfill of %d..%d failed: %s", symbol, gap.from_ms, gap.to_ms, exc)
        for candle in market_selectors.candle_range(instrument=instrument, timeframe="1s", start_ms=gap.from_ms,
                                                    end_ms=gap.to_ms):
            self.counters[symbol].candles_backfilled += 1
            self.rings[symbol]["1s"].upsert(candle)
            self.recent[symbol]["1s"].append(candle)

    def _market(self, symbol: str, second: SecondResult) -> None:
        gap = second.gaps.get(symbol)
        if gap is not None:
            self._backfill_gap(symbol, gap)
        candle = second.candles.get(symbol)
        if candle is not None:
            self.counters[symbol].candles_1s += 1
            self.rings[symbol]["1s"].upsert(candle)
            self._buffers.candles.setdefault(symbol, []).append(candle)
            self._roll_up(symbol, candle)
        frame = second.frames.get(symbol)
        if frame is not None:
            self.counters[symbol].cob_frames += 1
            self.frame_rings[symbol].upsert(frame)
            self._buffers.frames.setdefault(symbol, []).append(frame)

    def _roll_up(self, symbol: str, candle: CandleEvent) -> None:
        """When a 1m/1h/1d period closes, build it from the lower timeframe or backfill it."""
        self.recent[symbol]["1s"].append(candle)
        closed = candle
        for lower, upper, count in ROLLUP:
            end = closed.open_time + PERIOD_MS[lower]
            if end % PERIOD_MS[upper]:
                return
            start = end - PERIOD_MS[upper]
            parts = [c for c in self.recent[symbol][lower] if start <= c.open_time < end]
            closed = _aggregate(symbol, upper, start, parts) if len(parts) == count else self._backfill(symbol, upper, start)
            if closed is None:
                return
            self.rings[symbol][upper].upsert(closed)
            self.recent[symbol][upper].append(closed)
            self._buffers.candles.setdefault(symbol, []).append(closed)

    def _backfill(self, symbol: str, timeframe: str, open_time: int) -> CandleEvent | None:
        """A period our trades do not fully cover (e.g. the session's first minute) comes from the
        candle store, as a REST backfill would; a period nobody has is logged as a data gap."""
        stored = market_selectors.candle_get(instrument=self.instruments[symbol], timeframe=timeframe,
                                             open_time=ms_to_datetime(open_time))
        if stored is None and self.rest is not None:  # live: the venue has the closed period
            from apps.market.backfill import candle_backfill
            from apps.market.venues.ccxt_rest import VenueError

            try:
                candle_backfill(instrument=self.instruments[symbol], timeframe=timeframe, start_ms=open_time,
                                end_ms=open_time + PERIOD_MS[timeframe], rest=self.rest, detail="rollup")
            except VenueError as exc:
                logger.error("%s: %s backfill at %d failed: %s", symbol, timeframe, open_time, exc)
            stored = market_selectors.candle_get(instrument=self.instruments[symbol], timeframe=timeframe,
                                                 open_time=ms_to_datetime(open_time))
        if stored is None:
            market_services.data_gap_record(instrument=self.instruments[symbol], cause=DataGap.Cause.MISSING_CANDLES,
                                            ts_event_ms=open_time, detail=f"{timeframe} candle not available")
        return stored

    def _record_gaps(self, ts: int) -> None:
        for symbol, instrument in self.instruments.items():
            gaps = self.session.stats[symbol]["gaps"]
            if gaps > self._gaps_seen[symbol]:
                market_services.data_gap_record(instrument=instrument, cause=DataGap.Cause.SEQUENCE_GAP,
                                                ts_event_ms=ts, detail=f"{gaps - self._gaps_seen[symbol]} gap(s), resynced")
                self._gaps_seen[symbol] = gaps
            self.counters[symbol].sequence_gaps = gaps

    def flush(self) -> None:
        """Write buffered candles and frames (idempotent upserts) in one transaction."""
        with transaction.atomic():
            for symbol, candles in self._buffers.candles.items():
                market_services.candle_upsert_many(instrument=self.instruments[symbol], candles=candles)
            for symbol, frames in self._buffers.frames.items():
                market_services.cob_frame_copy_many(instrument=self.instruments[symbol], frames=frames)
        self._buffers = _Buffers()

    def _infer_and_trade(self, second: SecondResult) -> dict:
        symbol, counters = self.traded.symbol, self.counters[self.traded.symbol]
        inputs = build_base_data_input(
            ts=second.ts, symbol=symbol, reference_symbol=self.reference.symbol, rings=self.rings[symbol],
            reference_ring=self.rings[self.reference.symbol]["1s"], frame_ring=self.frame_rings[symbol],
            last_outputs=dict(self.last_outputs),
        )
        if self.input_hook is not None:
            inputs = self.input_hook(inputs)
        completeness = inputs.completeness()
        counters.completeness_sum += completeness["overall"]
        counters.completeness_n += 1
        if self.inference_in_worker:
            result = self._infer_in_worker(second.ts)
        else:
            result = prediction_inference.inference_run(
                instrument=self.traded, inputs=inputs, models=self.models, store_inputs=self.store_inputs,
                min_completeness=settings.GOGO_MIN_COMPLETENESS)
        counters.history_errors += result.storage_errors
        self.last_outputs.update(result.outputs)
        for name in result.outputs:
            counters.model_predictions[name] = counters.model_predictions.get(name, 0) + 1
        if not result.outputs:
            counters.skipped_inferences += 1
            reason = next(iter(result.skipped.values()), "no enabled model")
            payload = {"status": "skipped", "action": "", "confidence": None, "reason": reason,
                       "probs": {"BUY": None, "SELL": None, "HOLD": None}, "models": {}}
            return {"prediction": payload, "completeness": completeness, "decisions": []}
        counters.predictions += 1
        prediction = result.rows.get(prediction_services.CNN_NAME) or next(iter(result.rows.values()), None)
        book = second.books.get(symbol)
        self.config.refresh_from_db()  # admin/dashboard-editable settings take effect on the next decision
        mid = book.mid() if book is not None else None
        output, gating = self.desk.mixture(result.outputs, second.ts, mid)
        conditions = self._conditions(book, mid, completeness["overall"])
        trades = second.trades.get(symbol, ())
        decisions = [self._decide_and_execute(b, output, gating, prediction, second.ts, book, conditions, trades)
                     for b in self.books.values()]
        counters.decisions += len(decisions)
        payload = {"status": "predicted", "action": output.action, "confidence": output.confidence, "reason": "",
                   "probs": dict(output.probs), "predicted_returns": dict(output.predicted_returns),
                   "gating": {"mode": gating["mode"], "weights": gating["weights"]},
                   "models": {n: {"action": o.action, "confidence": o.confidence, "probs": dict(o.probs)}
                              for n, o in result.outputs.items()}}
        return {"prediction": payload, "completeness": completeness, "decisions": decisions}

    def _infer_in_worker(self, ts: int) -> prediction_inference.InferenceResult:
        """Workers mode: the ``inference`` queue runs every enabled model on the stored data of this
        second (``step`` flushed it) and stores the predictions; the engine waits for the outputs to decide.
        A worker that does not answer within GOGO_INFERENCE_TIMEOUT seconds costs this second's
        decision (logged and counted as skipped), never the session."""
        from celery.exceptions import CeleryError

        from workers.inference import run_inference

        wire = prediction_inference.outputs_to_wire(self.last_outputs)
        result = prediction_inference.InferenceResult()
        try:
            reply = run_inference.apply_async((self.traded.pk, self.reference.pk, ts, wire), queue="inference").get(
                timeout=settings.GOGO_INFERENCE_TIMEOUT, disable_sync_subtasks=False, propagate=False)
        except (CeleryError, TimeoutError) as exc:
            reply = exc
        if isinstance(reply, BaseException):  # timed out, or the task itself raised
            logger.error("inference worker failed at %d: %r", ts, reply)
            self.counters[self.traded.symbol].inference_failures += 1
            result.skipped = {"worker": f"inference worker: {type(reply).__name__}: {reply}"}
            return result
        result.outputs = prediction_inference.outputs_from_wire(reply["outputs"])
        result.skipped, result.storage_errors = reply["skipped"], reply["storage_errors"]
        result.rows = {p.model_name: p for p in Prediction.objects.filter(
            instrument=self.traded, ts_event=ms_to_datetime(ts), model_name__in=list(result.outputs))}
        return result

    def _conditions(self, book, mid: float | None, completeness: float) -> MarketConditions:
        """Spread (bps of mid) of the traded book, 1 s log-return volatility over the last minute, completeness."""
        spread = book.spread() if book is not None else None
        closes = [c.close for c in self.recent[self.traded.symbol]["1s"]]
        return MarketConditions(spread_bps=spread / mid * 1e4 if spread is not None and mid else None,
                                volatility=realized_volatility(closes), completeness=completeness)

    def _decide_and_execute(self, desk: AccountDesk, output, gating: dict, prediction, ts: int, book,
                            conditions: MarketConditions, trades=()) -> dict:
        return self.desk.trade(desk, output=output, gating=gating, prediction=prediction, ts=ts, book=book,
                               conditions=conditions, candles_1m=list(self.recent[self.traded.symbol]["1m"]),
                               trades=trades)

    def _update(self, second: SecondResult, trading: dict) -> dict:
        """The update published for this second (the dashboard's ``tick``; apps.dashboard reads it).

        Shape: {"type": "tick", "ts" (ms), "symbol", "instruments": {symbol: {"candle", "frame",
        "gaps"}}, "pivots": {"1m" | "1h" | "1d": {"t" (ms, open of the period the levels apply to), "p",
        "r1", "r2", "s1", "s2"} | None}, "prediction" (with "accuracy": {model: [accuracy | None, scored
        calls]} when models ran), "completeness", "decisions", "accounts": {account id:
        ``_account_payload`` + "new_fills"}}."""
        update = {"type": "tick", "ts": second.ts, "symbol": self.traded.symbol, "instruments": {}}
        for symbol in self.instruments:
            candle, frame = second.candles.get(symbol), second.frames.get(symbol)
            update["instruments"][symbol] = {
                "candle": _candle_payload(candle) if candle else None,
                "frame": _frame_payload(frame) if frame else None,
                "gaps": self.counters[symbol].sequence_gaps,
            }
        update["pivots"] = self._pivots(second.ts) if self.traded.symbol in self.rings else {}
        mid = second.books[self.traded.symbol].mid() if self.traded.symbol in second.books else None
        self.last_mid = mid or self.last_mid
        update.update(trading)
        prediction = update.get("prediction")
        if prediction and prediction.get("models") and hasattr(self, "desk"):
            accuracy = {n: list(self.desk.scorer.accuracy(n)) for n in prediction["models"]}
            update["prediction"] = {**prediction, "accuracy": accuracy}
        update["accounts"] = {}
        for pk, book in self.books.items():
            update["accounts"][str(pk)] = {**self._account_payload(book, mid), "new_fills": self._new_fills(book)}
        return update

    def _pivots(self, ts: int) -> dict:
        """Floor pivots (ml.features.pivots) in force at ``ts`` for 1m, 1h and 1d, from the traded
        instrument's candle of the previous period when the ring holds it (else None). Computed once
        per period (a backtest steps through many seconds of the same minute)."""
        from ml.features.pivots import floor_pivots

        cache = self._pivot_cache
        out: dict[str, dict | None] = {}
        for timeframe, period in PERIOD_MS.items():
            if timeframe == "1s":
                continue  # the 1 s chart draws the minute's levels
            current = ts - ts % period
            if timeframe in cache and cache[timeframe][0] == current:
                out[timeframe] = cache[timeframe][1]
                continue
            values, present = self.rings[self.traded.symbol][timeframe].window(current - period, 1)
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

    def _new_fills(self, book: AccountBook) -> list[dict]:
        """The account's fills since the previous update, read only when its fill count moved:
        [{"ts" ms, "side", "price" USD, "quantity" base units, "fee" USD}], oldest first (at most 20)."""
        from apps.trading.models import Fill

        published = self._fills_published
        seen = published.get(book.account.pk, 0)
        if book.fills <= seen:
            return []
        published[book.account.pk] = book.fills
        rows = (Fill.objects.filter(order__account=book.account, order__instrument=self.traded)
                .select_related("order").order_by("-ts_event", "-pk")[:min(book.fills - seen, 20)])
        return [{"ts": int(f.ts_event.timestamp() * 1000), "side": f.order.side, "price": float(f.price),
                 "quantity": float(f.quantity), "fee": float(f.fee)} for f in reversed(rows)]

    def _account_payload(self, book: AccountBook, mid: float | None) -> dict:
        """One account's state: position (base units, text), average price, PnL and equity (USD, equity
        as of the last risk cycle), order / fill counts, open paper orders
        [{"id", "side", "type", "quantity", "remaining", "price" (None for MARKET)}], risk state."""
        p = book.position
        unrealized = p.unrealized_pnl(to_decimal(mid)) if mid else Decimal(0)
        equity = book.equity_curve[-1] if book.equity_curve else float(book.account.starting_balance + p.realized_pnl)
        matcher = getattr(book.client, "matcher", None)  # paper only: a live venue's orders are its own
        open_orders = [{"id": o.client_order_id, "side": o.side, "type": o.order_type, "quantity": round(o.quantity, 8),
                        "remaining": round(o.remaining, 8), "price": o.price}
                       for o in (matcher.open_orders() if matcher is not None else ())]
        return {"position": str(p.quantity), "average_price": str(p.average_price.quantize(Decimal("0.01"))),
                "realized_pnl": float(p.realized_pnl), "unrealized_pnl": float(unrealized),
                "pnl": float(p.realized_pnl + unrealized), "equity": round(float(equity), 2),
                "orders": book.orders, "fills": book.fills, "open_orders": open_orders,
                "risk_state": book.risk.state.value, "kill_switch": book.risk_row.kill_switch}

    def summary(self) -> dict:
        """Counts of this run per instrument and per account (the replay command prints it)."""
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
        for book in self.books.values():
            payload = self._account_payload(book, self.last_mid)
            payload["rejections"] = book.rejections
            curve = risk_metrics_summary(book.equity_curve, 1.0) if len(book.equity_curve) >= 2 else {}
            payload["risk_metrics"] = {k: v if v is None else round(v, 6) for k, v in curve.items()}
            accounts[f"{book.account.owner}/{book.account.name}"] = payload
        return {"instruments": instruments, "accounts": accounts,
                "start": self.first_ts and ms_to_datetime(self.first_ts).isoformat(),
                "end": self.last_ts and ms_to_datetime(self.last_ts).isoformat()}


def _aggregate(symbol: str, timeframe: str, open_time: int, parts: list[CandleEvent]) -> CandleEvent:
    return CandleEvent(
        symbol, timeframe, open_time, parts[0].open, max(c.high for c in parts), min(c.low for c in parts),
        parts[-1].close, sum(c.volume for c in parts), sum(c.quote_volume for c in parts),
        sum(c.trade_count for c in parts),
    )


def _candle_payload(c: CandleEvent) -> dict:
    return {"t": c.open_time, "o": c.open, "h": c.high, "l": c.low, "c": c.close, "v": round(c.volume, 6)}


def _frame_payload(f) -> dict:
    return {"ts": f.ts, "mid": f.mid, "first": f.first_bucket_price, "width": f.bucket_width,
            "bid": [round(float(v), 2) for v in f.bid_usd], "ask": [round(float(v), 2) for v in f.ask_usd],
            "imbalance": [round(float(v), 4) for v in f.imbalance], "imbalance_5": round(f.imbalance_5, 4),
            "ma": {k: round(v, 4) for k, v in f.imbalance_ma.items()}}
