"""MarketSession.skip_bucket_mas (the fast backtest's replay): the same frames without the
per-bucket imbalance MAs; MarketSession.specs: the specs as given."""
from __future__ import annotations

from itertools import islice

import numpy as np

from ml.market.session import MarketSession
from tests.ml.market.recorded import SPOT_SPECS


def test_skipping_the_bucket_mas_leaves_every_other_field_of_the_frames_as_it_was(spot_venue):
    full, skipped = MarketSession(spot_venue, SPOT_SPECS), MarketSession(spot_venue, SPOT_SPECS)
    skipped.skip_bucket_mas()
    assert skipped.specs == full.specs == list(SPOT_SPECS)
    for a, b in islice(zip(full.seconds(), skipped.seconds(), strict=False), 30):
        frame, lean = a.frames["ETHUSDT"], b.frames["ETHUSDT"]
        assert set(frame.bucket_imbalance_ma) == {"1s", "5s", "15s", "60s"} and not lean.bucket_imbalance_ma
        np.testing.assert_array_equal(frame.imbalance, lean.imbalance)
        assert frame.imbalance_ma == lean.imbalance_ma and frame.mid == lean.mid
