"""The main job, one exchange second at a time: market data -> COB/candles -> BaseDataInput ->
every enabled model (CNN, DQN, transformer) -> decision -> risk -> paper fills, everything
persisted, and one update per second to publish.

Inference: below the completeness gate (GOGO_MIN_COMPLETENESS, overall) no model runs and each
enabled model stores a skipped prediction; above it each model runs (or is skipped when its own
components are thin) and stores its prediction with its input package. The orchestrator acts on
the mean of the probabilities of the models that predicted this second (ml.models.ensemble);
the decision links to the CNN's prediction when there is one. Every model's output of this second
is fed to all models at the next second through ``BaseDataInput.last_outputs``. Counters:
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
from apps.trading.models import TradingAccount
from apps.trading.positions import PositionState
from ml.features.base_input import build_base_data_input
from ml.features.rings import CandleRing, FrameRing
from ml.market.events import Candle as CandleEvent
from ml.market.replay import ReplayVenue
from ml.market.session import InstrumentSpec, MarketSession, SecondResult
from ml.models.ensemble import mean_output
from ml.orchestrator import decide

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


@dataclass
class AccountBook:
    """In-memory trading state of one account on the traded instrument during a session."""

    account: TradingAccount
    position: PositionState
    last_order_ms: int | None = None
    orders: int = 0
    fills: int = 0
    rejections: int = 0


@dataclass
class _Buffers:
    candles: dict[str, list[CandleEvent]] = field(default_factory=dict)
    frames: dict[str, list] = field(default_factory=dict)


class Engine:
    """Drives one replay session over recorded streams (see module docstring).

    ``recordings`` maps symbol -> ordered files of one stream. Raises ValueError when a symbol is
    not a configured, enabled Instrument, or when no traded instrument is among them.
    """

    def __init__(self, *, recordings: dict[str, list[Path]], sync_rule: str = "spot",
                 drop_deltas: dict[str, set[int]] | None = None, accounts: list[TradingAccount] | None = None,
                 flush_every: int = 1, store_inputs: bool = True) -> None:
        venue = Instrument.Venue.BINANCE_USDM if sync_rule == "futures" else Instrument.Venue.BINANCE
        self.instruments = self._instruments(recordings, venue)
        self.traded = next(i for i in self.instruments.values() if i.is_traded)
        self.reference = next((i for i in self.instruments.values() if not i.is_traded), self.traded)
        self.venue = ReplayVenue(recordings, drop_deltas=drop_deltas)
        specs = [InstrumentSpec(s, float(i.bucket_width), i.bucket_count, sync_rule, tick_size=float(i.tick_size))
                 for s, i in self.instruments.items()]
        self.session = MarketSession(self.venue, specs)
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

    @staticmethod
    def _instruments(recordings: dict[str, list[Path]], venue: str) -> dict[str, Instrument]:
        rows = Instrument.objects.filter(venue=venue, symbol__in=list(recordings), enabled=True)
        found = {i.symbol: i for i in rows}
        missing = sorted(set(recordings) - set(found))
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

    def _start(self, ts: int) -> None:
        self.first_ts = ts
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
        for account in self.accounts:
            state = trading_services.position_as_of(account=account, instrument=self.traded, before_ms=ts)
            self.books[account.pk] = AccountBook(account=account, position=state)

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

    def _market(self, symbol: str, second: SecondResult) -> None:
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
        output = mean_output(result.outputs)
        counters.predictions += 1
        prediction = result.rows.get(prediction_services.CNN_NAME) or next(iter(result.rows.values()), None)
        book = second.books[symbol]
        self.config.refresh_from_db()  # admin-editable thresholds take effect on the next decision
        decisions = [self._decide_and_execute(b, output, prediction, second.ts, book) for b in self.books.values()]
        counters.decisions += len(decisions)
        payload = {"status": "predicted", "action": output.action, "confidence": output.confidence, "reason": "",
                   "probs": dict(output.probs), "predicted_returns": dict(output.predicted_returns),
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

    def _decide_and_execute(self, account_book: AccountBook, output, prediction, ts: int, book) -> dict:
        cfg = self.config
        result = decide(probs=output.probs, buy_threshold=cfg.buy_threshold,
                        sell_threshold=cfg.sell_threshold, now_ms=ts, last_order_ms=account_book.last_order_ms,
                        cooldown_ms=cfg.cooldown_seconds * 1000)
        account = account_book.account
        decision = trading_services.decision_record(account=account, instrument=self.traded, ts_event_ms=ts,
                                                    result=result, prediction=prediction)
        payload = {"account": account.pk, "action": result.action, "confidence": result.confidence,
                   "threshold": result.threshold, "reason": result.reason, "order": None}
        if result.action == "HOLD":
            return payload
        intent = trading_services.OrderIntent(account=account, instrument=self.traded, side=result.action,
                                              notional=cfg.order_notional, ts_event_ms=ts, decision=decision)
        levels = book.levels("ask" if result.action == "BUY" else "bid", 200)
        order = trading_services.order_submit_paper(intent=intent, levels=levels, state=account_book.position)
        account_book.last_order_ms = ts
        account_book.orders += 1
        account_book.fills += order.fills.count()
        account_book.rejections += order.status == order.Status.REJECTED
        trading_services.position_save(account=account, instrument=self.traded, state=account_book.position)
        payload["order"] = {"side": order.side, "quantity": str(order.quantity), "status": order.status,
                            "price": str(order.average_price or ""), "reason": order.reject_reason}
        return payload

    def _update(self, second: SecondResult, trading: dict) -> dict:
        update = {"type": "tick", "ts": second.ts, "symbol": self.traded.symbol, "instruments": {}}
        for symbol in self.instruments:
            candle, frame = second.candles.get(symbol), second.frames.get(symbol)
            update["instruments"][symbol] = {
                "candle": _candle_payload(candle) if candle else None,
                "frame": _frame_payload(frame) if frame else None,
                "gaps": self.counters[symbol].sequence_gaps,
            }
        mid = second.books[self.traded.symbol].mid() if self.traded.symbol in second.books else None
        self.last_mid = mid or self.last_mid
        update.update(trading)
        update["accounts"] = {str(pk): self._account_payload(b, mid) for pk, b in self.books.items()}
        return update

    def _account_payload(self, book: AccountBook, mid: float | None) -> dict:
        p = book.position
        unrealized = p.unrealized_pnl(to_decimal(mid)) if mid else Decimal(0)
        return {"position": str(p.quantity), "average_price": str(p.average_price.quantize(Decimal("0.01"))),
                "realized_pnl": float(p.realized_pnl), "unrealized_pnl": float(unrealized),
                "pnl": float(p.realized_pnl + unrealized), "orders": book.orders, "fills": book.fills}

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
