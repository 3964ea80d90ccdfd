"""Per-second training sequences (1s candles + COB frames) from a recorded order-book session.

The recording is replayed through :class:`ml.market.session.MarketSession` (the same code as the
live pipeline) into the same ring buffers the engine uses, and each window is cut with
``ring.window`` at each second, so a training window equals the live BaseDataInput tail at that
second, gaps and fills included.

Default session: Binance USD-M ETHUSDT + BTCUSDT, 2024-07-18 23:57 -> 2024-07-19 00:05 UTC
(~8 minutes, data README section 1). The spot session of 2024-08-08/09 that the replay serves
is left out, so the replay is out of sample for the transformer too.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.features.rings import CandleRing, FrameRing
from ml.market.recording import default_data_dir
from ml.market.replay import ReplayVenue
from ml.market.session import InstrumentSpec, MarketSession

logger = logging.getLogger(__name__)

TRAIN_SESSION = {"ETHUSDT": ("ethusdt_20240718.gz", "ethusdt_20240719.gz"),
                 "BTCUSDT": ("btcusdt_20240718.gz", "btcusdt_20240719.gz")}
BUCKET_WIDTH_USD = {"ETHUSDT": 1.0, "BTCUSDT": 10.0}  # as the default Instrument rows


@dataclass
class SessionSequences:
    """Raw per-second rows of one session, oldest first (S seconds).

    Attributes:
        ts: int64 (S,) second start times (ms), contiguous.
        windows: component (primary_1s, reference_1s, cob) -> float32 (S, T, C) raw window
            ending at each second, as ``ring.window(ts, T)`` returns it.
        present: component -> bool (S, T).
        close: float64 (S,) primary close at the end of each second (NaN before the first trade).
    """

    ts: np.ndarray
    windows: dict[str, np.ndarray]
    present: dict[str, np.ndarray]
    close: np.ndarray


def default_session_files(data_dir: str | Path | None = None) -> dict[str, list[Path]]:
    """Files of the default training session. Raises FileNotFoundError naming a missing one."""
    root = Path(data_dir or default_data_dir()) / "orderbook" / "binance_usdm"
    files = {sym: [root / name for name in names] for sym, names in TRAIN_SESSION.items()}
    missing = [str(p) for paths in files.values() for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"training session files not found: {missing}")
    return files


def session_sequences(recordings: dict[str, list[Path]], *, primary: str = "ETHUSDT",
                      reference: str = "BTCUSDT", seq_len: int = 60, sync_rule: str = "futures",
                      n_buckets: int = 20) -> SessionSequences:
    """Replay ``recordings`` and cut a ``seq_len``-second window at every emitted second.

    Raises:
        ValueError: primary or reference missing from recordings, or no second emitted.
    """
    if primary not in recordings or reference not in recordings:
        raise ValueError(f"recordings need {primary} and {reference}, got {sorted(recordings)}")
    specs = [InstrumentSpec(s, BUCKET_WIDTH_USD.get(s, 1.0), n_buckets, sync_rule) for s in (primary, reference)]
    session = MarketSession(ReplayVenue({s: recordings[s] for s in (primary, reference)}), specs)
    capacity = max(2 * seq_len, 64)
    rings = {primary: CandleRing("1s", capacity), reference: CandleRing("1s", capacity)}
    frames = FrameRing(capacity=capacity, n_buckets=n_buckets)
    ts_list, close = [], []
    parts: dict[str, list] = {"primary_1s": [], "reference_1s": [], "cob": []}
    masks: dict[str, list] = {k: [] for k in parts}
    for second in session.seconds():
        for symbol, ring in rings.items():
            if symbol in second.candles:
                ring.upsert(second.candles[symbol])
        if primary in second.frames:
            frames.upsert(second.frames[primary])
        for name, src in (("primary_1s", rings[primary]), ("reference_1s", rings[reference]), ("cob", frames)):
            values, present = src.window(second.ts, seq_len)
            parts[name].append(values)
            masks[name].append(present)
        ts_list.append(second.ts)
        close.append(parts["primary_1s"][-1][-1, 3] if masks["primary_1s"][-1].any() else np.nan)
    if not ts_list:
        raise ValueError("the recording produced no complete second")
    logger.info("session sequences: %d seconds of %s/%s", len(ts_list), primary, reference)
    return SessionSequences(ts=np.asarray(ts_list, dtype=np.int64),
                            windows={k: np.stack(v) for k, v in parts.items()},
                            present={k: np.stack(v) for k, v in masks.items()},
                            close=np.asarray(close, dtype=np.float64))
