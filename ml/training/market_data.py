"""Training samples of the live market families: candle history plus recorded order-book sessions.

Two sources, one SampleSet (``ml/features/groups.py``; every group masked where its data is absent):

- candle history (:func:`candle_samples`): every ``stride_min``-th minute of all the 1m history of
  the data directory (``ml.data.history.load_history``: ETHUSDT 1m/1h/1d, BTCUSDT 1m), built as the
  live instant after each 1m candle (``history_samples``). Labels at 1/5/15/60 min. The 1 s and
  COB groups are masked (candles have none).
- order-book sessions (:func:`session_samples`): a recording replayed second by second through
  ``MarketSession`` (the live market code) into the engine's rings, one BaseDataInput per second
  (``build_base_data_input``), its groups by ``sample_set_from_inputs``: the 1 s candles, the
  reference's 1 s candles, the COB and the 1 s indicators and pivots are real; 1m/1h/1d are masked
  (a session is minutes long). Labels: 1 and 5 min returns of the 1 s closes; 15/60 min unknown
  (NaN: no loss at those horizons).

Held out of all training (:data:`HELD_OUT`): the default replay session's minutes, 2024-08-08
23:00 -> 2024-08-09 01:00 UTC, widened so that no kept sample's label (60 min) ends in it and no
kept sample's 1m or 1h sequence rows (5 h of 1m rows behind the indicators, 48 h of 1h rows)
start in it: candle samples with instants in [23:00 - 61 min, 01:00 + 48 h) are dropped. The
300-hour and 300-day indicator windows of later samples still contain the 1h / 1d bars of those
two hours (2 of 300 rows). No recording of those minutes (spot, USD-M, COIN-M) is replayed.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from ml.data.history import load_history
from ml.features.base_input import BaseDataInput, build_base_data_input
from ml.features.groups import SampleSet, sample_set_from_inputs
from ml.features.rings import CandleRing, FrameRing
from ml.market.replay import ReplayVenue
from ml.market.session import InstrumentSpec, MarketSession

logger = logging.getLogger(__name__)

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
HELD_OUT = (1723158000000, 1723165200000)  # 2024-08-08 23:00 -> 2024-08-09 01:00 UTC (ms)
HELD_OUT_DROP = (HELD_OUT[0] - 61 * MINUTE_MS, HELD_OUT[1] + 48 * HOUR_MS)
BUCKET_WIDTH_USD = {"ETHUSDT": 1.0, "BTCUSDT": 10.0}  # as the default Instrument rows
SESSION_HORIZONS_S = {1: 60, 5: 300}  # label horizon (min) -> seconds, known inside a session
HORIZONS_MIN = (1, 5, 15, 60)
# Order-book sessions of other days (data README section 1): (primary, reference) -> files.
# 2023-04-04/05 has USD-M BTCUSDT only: it is replayed as the primary with no reference, so it
# trains the COB and 1 s branches on another book (its reference group is masked).
TRAIN_SESSIONS: tuple[dict[str, tuple[str, ...]], ...] = (
    {"ETHUSDT": ("ethusdt_20240718.gz", "ethusdt_20240719.gz"),
     "BTCUSDT": ("btcusdt_20240718.gz", "btcusdt_20240719.gz")},
    {"BTCUSDT": ("btcusdt_20230404.dat.gz", "btcusdt_20230405.dat.gz")},
)


def concat_samples(parts: list[SampleSet]) -> SampleSet:
    """One SampleSet of ``parts`` in time order (stable). Distinct rows are concatenated per group
    (indices shifted), returns joined per horizon (NaN where a part lacks a horizon), cross-model
    groups kept only when every part has them.

    Raises:
        ValueError: no non-empty part.
    """
    parts = [p for p in parts if len(p)]
    if not parts:
        raise ValueError("no sample to join")
    groups = list(parts[0].values)
    values, index, mask = {}, {}, {}
    for g in groups:
        offsets = np.cumsum([0] + [len(p.values[g]) for p in parts[:-1]])
        values[g] = np.concatenate([p.values[g] for p in parts])
        index[g] = np.concatenate([p.index[g] + off for p, off in zip(parts, offsets, strict=True)])
        mask[g] = np.concatenate([p.mask[g] for p in parts])
    horizons = sorted({h for p in parts for h in p.returns})
    returns = {h: np.concatenate([p.returns.get(h, np.full(len(p), np.nan)) for p in parts]) for h in horizons}
    extra_keys = set.intersection(*(set(p.extra) for p in parts))
    joined = SampleSet(times=np.concatenate([p.times for p in parts]), values=values, index=index, mask=mask,
                       close=np.concatenate([p.close for p in parts]), returns=returns,
                       extra={k: np.concatenate([p.extra[k] for p in parts]) for k in sorted(extra_keys)})
    return joined.subset(np.argsort(joined.times, kind="stable"))


def candle_samples(data_dir: str | Path, *, stride_min: int = 1, symbol: str = "ETHUSDT",
                   reference: str = "BTCUSDT") -> SampleSet:
    """Samples of all the candle history of ``symbol`` (reference 1m for ``btc_1m``) every
    ``stride_min`` minutes, without the held-out window (module docstring).

    Raises:
        ValueError: no 1m history of ``symbol`` in ``data_dir``.
    """
    primary, _ = load_history(data_dir, symbol)
    ref, _ = load_history(data_dir, reference, timeframes=("1m",))
    if "1m" not in primary:
        raise ValueError(f"no 1m history of {symbol} in {data_dir}")
    from ml.features.groups import history_samples

    samples = history_samples(primary, ref or None, start_ms=0, end_ms=2**62, stride_min=stride_min,
                              horizons_min=HORIZONS_MIN)
    keep = (samples.times < HELD_OUT_DROP[0]) | (samples.times >= HELD_OUT_DROP[1])
    return samples.subset(np.flatnonzero(keep))


def session_inputs(recordings: dict[str, list[Path]], *, primary: str, reference: str | None,
                   sync_rule: str = "futures") -> tuple[list[BaseDataInput], np.ndarray]:
    """Replay ``recordings`` (symbol -> files of one run) and build the BaseDataInput at every
    emitted second from 1 s rings and COB frames, as the engine does.

    Returns:
        (inputs oldest first, float64 (S,) primary close at each second, NaN before a trade).

    Raises:
        ValueError: primary (or reference) missing from recordings, or no second emitted.
    """
    symbols = [primary] + ([reference] if reference else [])
    missing = [s for s in symbols if s not in recordings]
    if missing:
        raise ValueError(f"recordings lack {missing}, got {sorted(recordings)}")
    specs = [InstrumentSpec(s, BUCKET_WIDTH_USD.get(s, 1.0), 20, sync_rule) for s in symbols]
    session = MarketSession(ReplayVenue({s: recordings[s] for s in symbols}), specs)
    rings = {s: CandleRing("1s", 600) for s in symbols}
    frames = FrameRing(capacity=600, n_buckets=20)
    inputs, close = [], []
    for second in session.seconds():
        for symbol, ring in rings.items():
            if symbol in second.candles:
                ring.upsert(second.candles[symbol])
        if primary in second.frames:
            frames.upsert(second.frames[primary])
        x = build_base_data_input(ts=second.ts, symbol=primary, reference_symbol=reference or "",
                                  rings={"1s": rings[primary]}, reference_ring=rings.get(reference),
                                  frame_ring=frames)
        inputs.append(x)
        last = x.components["primary_1s"][-1, 3]
        close.append(float(last) if last > 0 else np.nan)  # a filled row repeats the last close
    if not inputs:
        raise ValueError("the recording produced no complete second")
    return inputs, np.asarray(close, dtype=np.float64)


def session_samples(recordings: dict[str, list[Path]], *, primary: str, reference: str | None) -> SampleSet:
    """Samples of one replayed session (module docstring): labels at 1 and 5 min from the 1 s
    closes, NaN at 15 and 60 min. Raises as :func:`session_inputs`."""
    return samples_of_inputs(*session_inputs(recordings, primary=primary, reference=reference))


def samples_of_inputs(inputs: list[BaseDataInput], close: np.ndarray) -> SampleSet:
    """:func:`session_samples` of already replayed ``inputs`` (consecutive seconds) and their
    closes (USD, (S,))."""
    samples = sample_set_from_inputs(inputs, close=close)
    by_ts = dict(zip(samples.times.tolist(), close.tolist(), strict=True))
    for minutes in HORIZONS_MIN:
        future = np.array([by_ts.get(int(t) + SESSION_HORIZONS_S[minutes] * 1000, np.nan)
                           if minutes in SESSION_HORIZONS_S else np.nan for t in samples.times])
        samples.returns[minutes] = future / close - 1.0
    logger.info("session samples %s: %d seconds from %d", inputs[0].symbol, len(samples), samples.times[0])
    return samples


def default_session_files(data_dir: str | Path) -> list[tuple[str, str | None, dict[str, list[Path]]]]:
    """(primary, reference or None, recordings) of each training session (:data:`TRAIN_SESSIONS`).

    Raises:
        FileNotFoundError: naming a missing file.
    """
    root = Path(data_dir) / "orderbook" / "binance_usdm"
    out = []
    for session in TRAIN_SESSIONS:
        files = {sym: [root / n for n in names] for sym, names in session.items()}
        missing = [str(p) for paths in files.values() for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"training session files not found: {missing}")
        symbols = list(session)
        out.append((symbols[0], symbols[1] if len(symbols) > 1 else None, files))
    return out


@functools.lru_cache(maxsize=2)
def training_samples(data_dir: str, stride_min: int) -> SampleSet:
    """All training samples (candle history every ``stride_min`` minutes + every training
    session), time-ordered; cached per process (the three trainers of a first start share them).
    Callers must not modify the result. Raises FileNotFoundError / ValueError as the parts do."""
    parts = [candle_samples(data_dir, stride_min=stride_min)]
    for primary, reference, files in default_session_files(data_dir):
        parts.append(session_samples(files, primary=primary, reference=reference))
    samples = concat_samples(parts)
    logger.info("training samples: %d (%d candle, %d session), coverage %s", len(samples), len(parts[0]),
                len(samples) - len(parts[0]), {g: round(c, 3) for g, c in samples.coverage().items()})
    return samples
