"""Constants about the recorded spot session shared by the tests (not a test module)."""
from __future__ import annotations

from ml.market.session import InstrumentSpec

# 2024-08-08 23:59:00 UTC: the second whose ETH frame is checked by hand in test_cob.py.
HAND_CHECKED_SECOND = 1723161540000
# Bucket widths of the peer benchmark (shared/bench/peer_orderbook.py): $1 ETH, $10 BTC.
SPOT_SPECS = (InstrumentSpec("ETHUSDT", bucket_width=1.0), InstrumentSpec("BTCUSDT", 10.0))
# First and last second the session closes: 2024-08-08 23:54:15 (partial) .. 2024-08-09 00:05:04.
FIRST_SECOND, LAST_SECOND = 1723161255000, 1723161904000
