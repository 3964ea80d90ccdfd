"""Market-data exceptions: the type decides what the caller does.

- :class:`MalformedMessage`: one venue message cannot be parsed. Permanent for that message:
  log it, count it, skip it; never retry it.
- :class:`SequenceGap`: the diff-depth sequence ids do not chain (Binance ``U``/``u``/``pu``).
  Recoverable: the local book is discarded and rebuilt from a fresh snapshot. The
  synchronizer handles it itself and keeps the last one in ``BookSynchronizer.last_gap``;
  code that cannot resync on its own may raise it.
"""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


class MarketDataError(Exception):
    """Base class of every market-data error raised by ``ml.market``."""


class MalformedMessage(MarketDataError, ValueError):
    """A venue message is not valid JSON or lacks / mistypes a field (the message names it)."""


class SequenceGap(MarketDataError):
    """A diff-depth message does not continue the local book's update id chain.

    ``expected`` and ``got`` are the update ids that failed to match (their meaning depends on
    the rule: spot ``U`` vs previous ``u + 1``, futures ``pu`` vs previous ``u``).
    """

    def __init__(self, symbol: str, expected: int, got: int, reason: str) -> None:
        super().__init__(f"{symbol}: sequence gap ({reason}): expected {expected}, got {got}")
        self.symbol = symbol
        self.expected = expected
        self.got = got
        self.reason = reason
